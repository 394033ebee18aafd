/* SPDX-License-Identifier: MIT */
/*
 * Numbers typed by a person (agent flags, xmeshctl arguments): the whole
 * string is the number, or it is refused. strtol/strtoul/atoi alone took
 * "5m" for 5 and "abc" for 0, silently; strtod alone took "nan".
 */
#ifndef XMESH_NUMPARSE_H
#define XMESH_NUMPARSE_H

#include <stddef.h>

/*
 * s (strtod syntax, nothing before or after it) a number in [min, max]:
 * 0, or -EINVAL for trailing junk, NaN, out of range or empty.
 */
int xm_number_parse(const char *s, double min, double max, double *out);
/* The same, and a whole number. */
int xm_uint_parse(const char *s, unsigned int min, unsigned int max, unsigned int *out);
/*
 * v as a person writes it, for the ranges errors and docs give: a whole
 * number in digits ("3600000", "1000000000": %g makes them "3.6e+06" and
 * "1e+09"), anything else as %g. Returns buf.
 */
const char *xm_number_str(double v, char *buf, size_t len);

#endif
