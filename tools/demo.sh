#!/usr/bin/env bash
# Installs what is needed, builds, and runs the demo (as root on Debian 12/13): three electiond
# nodes in network namespaces created for the demo (198.18.0.0/15 addresses, a private bridge;
# nothing touches the host's interfaces), a candidate on each, the term as electionctl and busctl
# see it, then SIGKILL of the leader's node and the failover time every survivor saw.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh

[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null

exec env ELECTIOND="$PWD/build/daemon/electiond" ELECTIONCTL="$PWD/build/client-lib/electionctl" \
        /usr/bin/python3 tests/cluster/demo.py "$@"
