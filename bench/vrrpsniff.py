#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""VRRP receive stamps for bench-failover.py, run inside one node namespace:

    ip netns exec NS vrrpsniff.py

prints "ready" once its raw socket (IP protocol 112) is open, then one line per VRRP packet this
namespace receives: "<CLOCK_MONOTONIC ns> <source address>". A BACKUP learns of a new MASTER from
its first advert; this is when that happens. Ends at EOF on stdin (the benchmark is gone)."""

import os
import select
import socket
import sys
import time

IPPROTO_VRRP = 112


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    stdin = sys.stdin.fileno()
    while True:
        r, _, _ = select.select([s, stdin], [], [])
        if stdin in r and not os.read(stdin, 4096):
            return 0
        if s in r:
            _data, addr = s.recvfrom(2048)
            out.write("%d %s\n" % (time.monotonic_ns(), addr[0]))
            out.flush()


if __name__ == "__main__":
    sys.exit(main())
