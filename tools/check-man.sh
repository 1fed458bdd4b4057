#!/usr/bin/env bash
# Renders a man page with every groff warning enabled; fails on any warning or error.
set -eu
page="$1"
out=$(LC_ALL=C.UTF-8 MANWIDTH=80 groff -man -Tutf8 -ww -z "$page" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
    echo "$out"
    exit 1
fi
# man(1) itself must accept it as well (catches .so/.TH problems groff alone ignores)
out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -l "$page" 2>&1 >/dev/null) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
    echo "$out"
    exit 1
fi
echo "ok: $page"
