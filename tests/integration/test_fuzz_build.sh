#!/bin/bash
# SPDX-License-Identifier: MIT
# `make fuzz` stays usable: every libFuzzer target (tests/fuzz/fuzz_NAME.c)
# builds against today's sources and replays its seed corpus without a
# crash or sanitizer report. (Its link had broken unnoticed: a parser the
# CNI plugin's config reads moved into user/lib and the target's source list
# did not follow; no test built the targets.) Fuzzing itself is `make fuzz`.
set -eu
. "$(dirname "$0")/lib.sh"
command -v clang >/dev/null || xm_skip "no clang"
cd "$XM_TOP"
logs=$(mktemp -d /tmp/xm-fuzz.XXXXXX)
trap 'rm -rf "$logs"' EXIT
make -s -f tests/fuzz/Makefile build >"$logs/build.log" 2>&1 ||
	xm_fail "fuzz targets do not build: $(grep -m3 -E 'error|undefined' "$logs/build.log")"
n=0
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	name=${name#fuzz_}
	# -runs=0: execute each seed once, no mutation
	build/fuzz/fuzz_"$name" -runs=0 "tests/fuzz/corpus/$name" >"$logs/$name.log" 2>&1 ||
		xm_fail "fuzz_$name fails on its seeds: $(tail -n 5 "$logs/$name.log")"
	seeds=$(find "tests/fuzz/corpus/$name" -type f | wc -l)
	xm_assert "$seeds" -gt 0 "fuzz_$name has seeds"
	n=$((n + 1))
done
xm_assert "$n" -ge 3 "every fuzz target built and replayed its seeds"
