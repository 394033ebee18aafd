/* SPDX-License-Identifier: MIT */
/*
 * Where a value sits in JSON text, for messages that point at the line and
 * column of a value the parser accepted but that makes no sense (jansson
 * reports positions only for syntax errors). The text must be valid JSON.
 */
#ifndef XMESH_JSONLOC_H
#define XMESH_JSONLOC_H

#include <stddef.h>

/* One step of a path: an object key, or (key NULL) an array index. */
struct xm_json_step {
	const char *key;
	size_t index;
};

/* Line and column (1-based) where the value at path starts; -ENOENT if absent. */
int xm_json_locate(const char *text, size_t len, const struct xm_json_step *path, size_t depth,
		   int *line, int *col);

#endif
