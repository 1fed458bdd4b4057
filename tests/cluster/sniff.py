#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Captures every frame on one interface of the namespace it runs in (the harness starts it with
`ip netns exec NS`), in both directions:

    sniff.py IFACE OUT

prints "ready" once its AF_PACKET socket is bound, then appends each frame to OUT as a 4-byte
big-endian length and the frame's bytes, until EOF on stdin; then prints the number of frames."""

import os
import select
import socket
import struct
import sys

ETH_P_ALL = 0x0003


def main():
    iface, out_path = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((iface, 0))
    n = 0
    with open(out_path, "wb") as out:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        stdin = sys.stdin.fileno()
        while True:
            r, _, _ = select.select([s, stdin], [], [])
            if s in r:
                frame = s.recv(65536)
                out.write(struct.pack(">I", len(frame)) + frame)
                n += 1
            if stdin in r and not os.read(stdin, 4096):
                break
    sys.stdout.write("%d\n" % n)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
