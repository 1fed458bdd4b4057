#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (as root on Debian 12/13):
#   1. a normal build: all suites (unit, core, client, cluster, systemd, fuzz, package);
#   2. an ASan+UBSan build: the unit and core suites again, failing on any sanitizer report.
# Ends with one line "N passed, N failed, N skipped" over both runs; exits non-zero on any failure,
# on a build failure, on anything the tests left behind (processes, network namespaces, cgroups),
# and, with CI=true, on any skipped test (a skip there means the machine lacks something).
# ELECTIOND_SKIP_ASAN=1 skips step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash tools/install-deps.sh

jobs=$(nproc)
rc=0
failed=()     # build steps that failed, reported as failed "tests" by the summary
t0=$SECONDS

phase() { echo "== $1 (at +$((SECONDS - t0))s)"; }

# What the tests could leave behind, to compare after the run (other users' state is not ours).
cgroup_dirs() {
    local h
    for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
        if [ -e "$h/cgroup.procs" ]; then find "$h" -mindepth 1 -maxdepth 6 -type d 2>/dev/null || true; fi
    done | sort -u
}
netns_before=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
cgroups_before=$(cgroup_dirs)

phase "build (normal)"
[ -d build-test ] || meson setup build-test >/dev/null
rm -f build-test/meson-logs/testlog.json
if meson compile -C build-test; then
    phase "tests (normal)"
    meson test -C build-test --print-errorlogs --num-processes "$jobs" || rc=1
else
    failed+=(build-test:compile)
fi

logs=(build-test/meson-logs/testlog.json)
if [ "${ELECTIOND_SKIP_ASAN:-0}" != 1 ]; then
    phase "build (ASan+UBSan)"
    [ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
    rm -f build-asan/meson-logs/testlog.json
    if meson compile -C build-asan; then
        phase "tests (ASan+UBSan: unit, core)"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            meson test -C build-asan --print-errorlogs --num-processes "$jobs" --suite unit --suite core || rc=1
        logs+=(build-asan/meson-logs/testlog.json)
    else
        failed+=(build-asan:compile)
    fi
fi
phase "done"

# Leftovers: processes running from this tree, named namespaces of the test harness whose creating
# process is gone (edh<pid>-...), empty cgroups that were not there before.
leaks=0
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    exe=$(readlink "$p/exe" 2>/dev/null || true)
    cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null || true)
    case "$exe $cmd" in
        *"$root/build-"*|*"$root/tests/"*|*"$root/bench/"*)
            echo "LEFT BEHIND: process $pid: ${cmd:-$exe}"; leaks=1 ;;
    esac
done
for ns in $(comm -13 <(echo "$netns_before") <(ip netns list 2>/dev/null | awk '{print $1}' | sort)); do
    owner=$(sed -nE 's/^edh([0-9]+)-.*/\1/p' <<<"$ns")
    if [ -z "$owner" ] || [ ! -d "/proc/$owner" ]; then
        echo "LEFT BEHIND: network namespace $ns"; leaks=1
    fi
done
for cg in $(comm -13 <(echo "$cgroups_before") <(cgroup_dirs)); do
    if [ -d "$cg" ] && [ ! -s "$cg/cgroup.procs" ]; then
        echo "LEFT BEHIND: cgroup $cg"; leaks=1
    fi
done
[ "$leaks" = 0 ] || rc=1

summary=(/usr/bin/python3 tools/test-summary.py)
[ "${CI:-}" = true ] && summary+=(--skip-fails)
for f in "${failed[@]}"; do summary+=(--failed "$f"); done
"${summary[@]}" "${logs[@]}" || rc=1
exit "$rc"
