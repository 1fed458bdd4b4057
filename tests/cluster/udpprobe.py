#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tiny UDP sender/receiver run inside a namespace by the harness self-tests.

  udpprobe.py recv ADDR PORT SECONDS   prints "ready", then counts datagrams for SECONDS after the
                                       first one arrives (or SECONDS in all if none), prints count
  udpprobe.py send ADDR PORT COUNT     sends COUNT numbered datagrams, pacing every 50
  ... recv|send ... IFADDR             with ADDR a multicast group: join it / send to it on the
                                       interface that has IFADDR (TTL 1)
"""

import socket
import sys
import time


def recv(addr, port, seconds, ifaddr=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    if ifaddr:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", port))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     socket.inet_aton(addr) + socket.inet_aton(ifaddr))
    else:
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


def send(addr, port, count, ifaddr=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if ifaddr:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ifaddr))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    for i in range(count):
        try:
            s.sendto(b"probe-%d" % i, (addr, port))
        except OSError:
            pass  # link down or unreachable: the datagram is simply lost
        if i % 50 == 49:
            time.sleep(0.005)


if __name__ == "__main__":
    mode, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ifaddr = sys.argv[5] if len(sys.argv) > 5 else None
    if mode == "recv":
        recv(addr, port, float(n), ifaddr)
    else:
        send(addr, port, int(n), ifaddr)
