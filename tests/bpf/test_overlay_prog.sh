#!/bin/bash
# SPDX-License-Identifier: MIT
# The overlay cache programs on crafted packets (BPF_PROG_TEST_RUN): outer
# header and checksum, source port range, TTL, ECN both ways, VNI/address/
# port checks, TCP flags, epoch. See tests/tools/xm-ovl-prog.c. Run twice:
# as this kernel allows, and as on a kernel without adj_room_decap_l3 (< 6.3).
set -eu
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
prog="$(dirname "$0")/../../build/tests/xm-ovl-prog"
"$prog"
echo "--- as without adj_room_decap_l3:"
XMESH_DISABLE_FEATURES=adj_room_decap_l3 "$prog"
