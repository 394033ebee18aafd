#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs every test: cmocka unit tests, then BPF and integration tests on the
# real kernel (root). Each integration test builds its own world (netns,
# cgroup, pin root, all prefixed xm-) and removes it, also on failure.
# Exit codes of a test script: 0 pass, 77 skipped, anything else fail.
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
pass=0 fail=0 skip=0 failed=() flaky=()
# the running test's output; removed also when the run is interrupted
log=
# the last lines of each failed test's output, repeated after the summary:
# a CI log is often read from its end, and the reason must be there
why=$(mktemp -d /tmp/xm-test-why.XXXXXX)
# bpffs at /sys/fs/bpf for the whole run if this machine's init did not mount it
. scripts/bpffs.sh
xm_bpffs_ensure || exit 1
trap 'rm -rf "$log" "$why"; xm_bpffs_release' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
only=${XM_ONLY:-}
# XM_TEST: one or more substrings (space-separated); a test runs if its name has any.
read -ra filters <<<"${XM_TEST:-}"
# XM_RESULTS=FILE: also write one line per test, "name pass|fail|skip seconds".
results=${XM_RESULTS:-/dev/null}
# XM_RETRY=0: no second run. A BPF or integration test that fails runs once
# more (a shared, loaded machine makes some timing-bound worlds fail); one that
# passes then counts as passed but is printed, with its first failure, and
# listed as flaky at the end. A unit test never gets a second run.
retry=${XM_RETRY:-1}

selected() {
	[ ${#filters[@]} -eq 0 ] && return 0
	for f in "${filters[@]}"; do [[ $1 == *"$f"* ]] && return 0; done
	return 1
}

run_one() {
	local name=$1; shift
	local start=$SECONDS rc
	selected "$name" || return
	log=$(mktemp /tmp/xm-test-log.XXXXXX)
	printf '%-52s ' "$name"
	"$@" >"$log" 2>&1
	rc=$?
	case $rc in
	0) pass=$((pass + 1)); echo "ok ($((SECONDS - start))s)"; rc=pass ;;
	77) skip=$((skip + 1)); echo "skipped: $(tail -n1 "$log")"; rc=skip ;;
	*) echo "FAIL (rc $rc, $((SECONDS - start))s)"
	   sed 's/^/    | /' "$log" | tail -n 60
	   if [ "$retry" = 1 ] && [[ $name != unit/* ]]; then
		printf '%-52s ' "$name (second run)"
		start=$SECONDS
		"$@" >"$log" 2>&1
		rc=$?
	   fi
	   case $rc in
	   0) pass=$((pass + 1)); flaky+=("$name"); echo "ok ($((SECONDS - start))s): FLAKY"; rc=pass ;;
	   *) fail=$((fail + 1)); failed+=("$name")
	      tail -n 15 "$log" >"$why/${#failed[@]}"
	      [ "$retry" = 1 ] && [[ $name != unit/* ]] &&
		      { echo "FAIL again (rc $rc)"; sed 's/^/    | /' "$log" | tail -n 60; }
	      rc=fail ;;
	   esac ;;
	esac
	echo "$name $rc $((SECONDS - start))" >>"$results"
	rm -f "$log"
}

if [ "$only" != integration ]; then
	for t in "$B"/tests/unit/test_*; do
		[ -x "$t" ] || continue
		run_one "unit/$(basename "$t")" "$t"
	done
fi
if [ "$only" != unit ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "integration tests need root (they load BPF programs): run sudo make test" >&2
		fail=$((fail + 1))
	else
		for t in tests/bpf/test_*.sh tests/integration/test_*.sh; do
			[ -x "$t" ] || continue
			run_one "${t#tests/}" "$t"
		done
	fi
fi

echo
[ ${#flaky[@]} -gt 0 ] && printf 'flaky (failed, then passed on a second run): %s\n' "${flaky[@]}"
for i in "${!failed[@]}"; do
	echo "why ${failed[$i]} failed (the last lines of its last run):"
	sed 's/^/    | /' "$why/$((i + 1))"
done
[ ${#failed[@]} -gt 0 ] && printf 'failed: %s\n' "${failed[@]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
