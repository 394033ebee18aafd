#!/bin/bash
# SPDX-License-Identifier: MIT
# The overlay cache programs on crafted packets (BPF_PROG_TEST_RUN): outer
# header and checksum, source port range, TTL, ECN both ways, VNI/address/
# port checks, TCP flags, epoch. See tests/tools/xm-ovl-prog.c.
set -eu
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
exec "$(dirname "$0")/../../build/tests/xm-ovl-prog"
