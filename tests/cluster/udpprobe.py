#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tiny UDP sender/receiver run inside a namespace by the harness self-tests.

  udpprobe.py recv ADDR PORT SECONDS   prints "ready", then counts datagrams for SECONDS after the
                                       first one arrives (or SECONDS in all if none), prints count
  udpprobe.py send ADDR PORT COUNT     sends COUNT numbered datagrams, pacing every 50
"""

import socket
import sys
import time


def recv(addr, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((addr, port))
    print("ready", flush=True)
    seen = set()
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            break
        if not seen:
            deadline = time.monotonic() + seconds
        seen.add(data)
    print(len(seen), flush=True)


def send(addr, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(count):
        try:
            s.sendto(b"probe-%d" % i, (addr, port))
        except OSError:
            pass  # link down or unreachable: the datagram is simply lost
        if i % 50 == 49:
            time.sleep(0.005)


if __name__ == "__main__":
    mode, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if mode == "recv":
        recv(addr, port, float(n))
    else:
        send(addr, port, int(n))
