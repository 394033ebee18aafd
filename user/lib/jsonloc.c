// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>
#include "jsonloc.h"

struct scan {
	const char *s;
	size_t len, pos;
};

static void skip_ws(struct scan *sc)
{
	while (sc->pos < sc->len && strchr(" \t\r\n", sc->s[sc->pos]))
		sc->pos++;
}

/* At a '"': the string's extent (without quotes) in start and n, pos after it. */
static int scan_string(struct scan *sc, size_t *start, size_t *n)
{
	if (sc->pos >= sc->len || sc->s[sc->pos] != '"')
		return -EINVAL;
	*start = ++sc->pos;
	while (sc->pos < sc->len && sc->s[sc->pos] != '"') {
		if (sc->s[sc->pos] == '\\')
			sc->pos++;
		sc->pos++;
	}
	if (sc->pos >= sc->len)
		return -EINVAL;
	*n = sc->pos - *start;
	sc->pos++;
	return 0;
}

static int skip_value(struct scan *sc);

static int skip_container(struct scan *sc, char open, char close)
{
	size_t a, n;

	sc->pos++; /* open */
	skip_ws(sc);
	if (sc->pos < sc->len && sc->s[sc->pos] == close) {
		sc->pos++;
		return 0;
	}
	for (;;) {
		skip_ws(sc);
		if (open == '{') {
			if (scan_string(sc, &a, &n))
				return -EINVAL;
			skip_ws(sc);
			if (sc->pos >= sc->len || sc->s[sc->pos] != ':')
				return -EINVAL;
			sc->pos++;
		}
		if (skip_value(sc))
			return -EINVAL;
		skip_ws(sc);
		if (sc->pos >= sc->len)
			return -EINVAL;
		if (sc->s[sc->pos] == ',') {
			sc->pos++;
			continue;
		}
		if (sc->s[sc->pos] == close) {
			sc->pos++;
			return 0;
		}
		return -EINVAL;
	}
}

static int skip_value(struct scan *sc)
{
	size_t a, n;

	skip_ws(sc);
	if (sc->pos >= sc->len)
		return -EINVAL;
	switch (sc->s[sc->pos]) {
	case '"':
		return scan_string(sc, &a, &n);
	case '{':
		return skip_container(sc, '{', '}');
	case '[':
		return skip_container(sc, '[', ']');
	default: /* number, true, false, null */
		while (sc->pos < sc->len && !strchr(",]} \t\r\n", sc->s[sc->pos]))
			sc->pos++;
		return 0;
	}
}

/* pos at a container's opening char: move to the value of step, or -ENOENT. */
static int enter(struct scan *sc, const struct xm_json_step *step)
{
	size_t a, n, i = 0;

	if (step->key ? sc->s[sc->pos] != '{' : sc->s[sc->pos] != '[')
		return -ENOENT;
	sc->pos++;
	for (;;) {
		skip_ws(sc);
		if (sc->pos >= sc->len || sc->s[sc->pos] == '}' || sc->s[sc->pos] == ']')
			return -ENOENT;
		if (step->key) {
			if (scan_string(sc, &a, &n))
				return -EINVAL;
			skip_ws(sc);
			sc->pos++; /* ':' */
			skip_ws(sc);
			if (n == strlen(step->key) && !memcmp(sc->s + a, step->key, n))
				return 0;
		} else if (i == step->index) {
			return 0;
		}
		if (skip_value(sc))
			return -EINVAL;
		i++;
		skip_ws(sc);
		if (sc->pos < sc->len && sc->s[sc->pos] == ',')
			sc->pos++;
	}
}

int xm_json_locate(const char *text, size_t len, const struct xm_json_step *path, size_t depth,
		   int *line, int *col)
{
	struct scan sc = { text, len, 0 };
	int err;

	skip_ws(&sc);
	for (size_t d = 0; d < depth; d++) {
		if (sc.pos >= sc.len)
			return -ENOENT;
		err = enter(&sc, &path[d]);
		if (err)
			return err;
		skip_ws(&sc);
	}
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < sc.pos && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
	return 0;
}
