// SPDX-License-Identifier: MIT
/* Name syntax of the CNI spec (kept apart: the stdin parser and its fuzzer use it alone). */
#include <ctype.h>
#include <string.h>
#include "cni_state.h"

/* [A-Za-z0-9] then [A-Za-z0-9_.-]*: the spec's container id and network name syntax. */
static bool valid_token(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = s[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

bool xm_cni_valid_container_id(const char *s)
{
	return valid_token(s, XM_CNI_NAME_MAX);
}

bool xm_cni_valid_network_name(const char *s)
{
	return valid_token(s, XM_CNI_NAME_MAX);
}

bool xm_cni_valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '/' || c == ':' || isspace(c) || !isprint(c))
			return false;
	}
	return true;
}
