// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "numparse.h"

int xm_number_parse(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	/* strtod skips leading blanks: " 80" is not what a flag or an argument looks like */
	if (!s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	/* !(in range) also refuses NaN, which compares false with everything */
	if (errno || end == s || *end || !(v >= min && v <= max))
		return -EINVAL;
	*out = v;
	return 0;
}

int xm_uint_parse(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	double v;

	if (xm_number_parse(s, min, max, &v) || v != (unsigned int)v)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

const char *xm_number_str(double v, char *buf, size_t len)
{
	if (isfinite(v) && v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%g", v);
	return buf;
}
