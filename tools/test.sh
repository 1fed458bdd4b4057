#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (as root on Debian 12/13):
#   1. a normal build: all suites (unit, core, client, cluster, systemd, fuzz);
#   2. an ASan+UBSan build: the unit and core suites again, failing on any sanitizer report.
# Ends with one line "N passed, N failed, N skipped" over both runs.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh

jobs=$(nproc)
rc=0

[ -d build-test ] || meson setup build-test >/dev/null
meson compile -C build-test
meson test -C build-test --print-errorlogs --num-processes "$jobs" || rc=1

if [ "${ELECTIOND_SKIP_ASAN:-0}" != 1 ]; then
    [ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
    meson compile -C build-asan
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        meson test -C build-asan --print-errorlogs --num-processes "$jobs" --suite unit --suite core || rc=1
fi

logs=(build-test/meson-logs/testlog.json)
[ -f build-asan/meson-logs/testlog.json ] && [ "${ELECTIOND_SKIP_ASAN:-0}" != 1 ] && logs+=(build-asan/meson-logs/testlog.json)
/usr/bin/python3 tools/test-summary.py "${logs[@]}" || rc=1
exit "$rc"
