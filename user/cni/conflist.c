// SPDX-License-Identifier: MIT
#include <stdio.h>
#include "cni.h"

int xm_cni_conflist_main(int argc, char **argv)
{
	fprintf(stderr, "not yet\n");
	return 1;
}
