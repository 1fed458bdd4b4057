#!/usr/bin/env bash
# Installs everything electiond needs to build, test and demo on Debian 12 (or 13).
# The backports suite is derived from the machine's existing apt sources: no archive host is named here.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: must run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
. /etc/os-release
codename="${VERSION_CODENAME:-bookworm}"

# Debian 12 ships libraft 0.15 in main; the 0.22 (cowsql) series is in backports. Add it by
# copying the URIs of whichever existing source serves "$codename" main.
add_backports() {
    local out=/etc/apt/sources.list.d/electiond-backports.sources
    [ -e "$out" ] && return 0
    grep -rqs -- "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
    local uri="" keyring=""
    # deb822 sources
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        # take the first stanza whose Suites include the bare codename
        uri=$(awk -v c="$codename" '
            BEGIN { RS=""; FS="\n" }
            {
                u=""; s=0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); u=a[1] }
                    if ($i ~ /^Suites:/) { n=split($i, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == c) s=1 }
                }
                if (s && u != "") { print u; exit }
            }' "$f")
        if [ -n "$uri" ]; then
            keyring=$(awk -v u="$uri" 'BEGIN{RS="";FS="\n"} index($0,u){for(i=1;i<=NF;i++) if($i ~ /^Signed-By:/){sub(/^Signed-By:[ \t]*/,"",$i);print $i;exit}}' "$f")
            break
        fi
    done
    # one-line sources
    if [ -z "$uri" ]; then
        uri=$(grep -hsE "^deb[[:space:]]" /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
              | awk -v c="$codename" '{ for (i = 2; i <= NF; i++) if ($i == c) { print $(i-1); exit } }' \
              | sed 's/^\[.*\]$//' | head -n1)
    fi
    if [ -z "$uri" ]; then
        echo "install-deps.sh: cannot derive a ${codename}-backports source from /etc/apt" >&2
        return 1
    fi
    {
        echo "Types: deb"
        echo "URIs: $uri"
        echo "Suites: ${codename}-backports"
        echo "Components: main"
        [ -n "$keyring" ] && echo "Signed-By: $keyring"
    } > "$out"
    echo "install-deps.sh: added ${codename}-backports from $uri"
}

pkgs=(
    build-essential meson ninja-build pkg-config gettext git
    libsystemd-dev libnl-3-dev libnl-route-3-dev libglib2.0-dev libuv1-dev liblz4-dev libsodium-dev
    dbus dbus-bin systemd polkitd iproute2 nftables psmisc procps util-linux
    python3 python3-dbus python3-gi python3-dbusmock
    libxml2-utils groff-base man-db
    valgrind
    debhelper dpkg-dev fakeroot lintian
    keepalived python3-matplotlib
)

if [ "$codename" = bookworm ]; then
    add_backports
    apt-get update -qq
    apt-get install -y -qq -t "${codename}-backports" libraft-dev >/dev/null
else
    apt-get update -qq
    pkgs+=(libraft-dev)
fi
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null

ver=$(pkg-config --modversion raft)
case "$ver" in
    0.1[0-9]*|0.[0-9]|0.[0-9].*|0.1[0-9].*|0.2[01].*)
        echo "install-deps.sh: libraft $ver is too old (need >= 0.22)" >&2; exit 1 ;;
esac
echo "install-deps.sh: ok (libraft $ver)"
