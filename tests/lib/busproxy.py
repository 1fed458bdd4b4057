# SPDX-License-Identifier: LGPL-2.1-or-later
"""A D-Bus connection proxy that can hold the bus driver's answers back: one client (electiond)
connects to the proxy's socket, the proxy connects to the real bus and copies bytes both ways.
Once armed, it holds every reply to a method call the client sends to org.freedesktop.DBus
whose member is in `members`, until released; everything else flows. A test thus makes the
bus slow to answer exactly the driver queries of the daemon, and checks that the daemon keeps
serving other clients meanwhile (a synchronous driver call would block its event loop).

Only for tests: one connection, little-endian messages, no unix fd passing needed by the
client. Runs in a thread of the test process."""

import os
import socket
import struct
import tempfile
import threading

HELD_MEMBERS = ('GetConnectionCredentials', 'GetConnectionUnixUser', 'GetConnectionUnixProcessID',
                'GetNameOwner', 'NameHasOwner')


def _align(n, a):
    return (n + a - 1) // a * a


def _parse_header(buf):
    """(total length, type, serial, fields {code: value}) of the message at buf's start, or None
    if incomplete. Fields: 3 member, 5 reply serial, 6 destination (strings/uint32 only)."""
    if len(buf) < 16:
        return None
    if buf[0:1] != b'l':
        raise ValueError('only little-endian messages are supported')
    mtype = buf[1]
    body_len, serial, fields_len = struct.unpack_from('<III', buf, 4)
    hdr_end = 16 + fields_len
    total = _align(hdr_end, 8) + body_len
    if len(buf) < total:
        return None
    fields = {}
    off = 16
    while off < hdr_end:
        off = _align(off, 8)
        code = buf[off]
        siglen = buf[off + 1]
        sig = buf[off + 2:off + 2 + siglen].decode()
        off += 2 + siglen + 1
        if sig in ('s', 'o'):
            off = _align(off, 4)
            (n,) = struct.unpack_from('<I', buf, off)
            fields[code] = buf[off + 4:off + 4 + n].decode()
            off += 4 + n + 1
        elif sig == 'g':
            n = buf[off]
            fields[code] = buf[off + 1:off + 1 + n].decode()
            off += 1 + n + 1
        elif sig == 'u':
            off = _align(off, 4)
            (fields[code],) = struct.unpack_from('<I', buf, off)
            off += 4
        else:
            raise ValueError('unexpected header field signature %r' % sig)
    return total, mtype, serial, fields


class BusProxy:
    def __init__(self, upstream_path, members=HELD_MEMBERS):
        self.upstream_path = upstream_path
        self.members = set(members)
        self.dir = tempfile.mkdtemp(prefix='electiond-proxy-')
        os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, 'bus')
        self.address = 'unix:path=' + self.path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.lock = threading.Condition()
        self.armed = False
        self.watched = {}      # serial -> member of the client's watched calls to the driver
        self.held = []         # (member, reply bytes) held back, in order
        self.closed = False
        self.down = None
        self.client = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # --- control (test thread) ---
    def arm(self):
        with self.lock:
            self.armed = True

    def holding(self):
        """Members whose replies are held right now."""
        with self.lock:
            return [m for m, _ in self.held]

    def release(self):
        with self.lock:
            self.armed = False
            held, self.held = self.held, []
            for _, msg in held:
                self.client.sendall(msg)

    def close(self):
        self.closed = True
        for s in (self.listener, self.client, self.down):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass

    # --- the copy (proxy thread) ---
    def _run(self):
        try:
            self.client, _ = self.listener.accept()
        except OSError:
            return
        self.down = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.down.connect(self.upstream_path)
        t = threading.Thread(target=self._client_to_bus, daemon=True)
        t.start()
        self._bus_to_client()

    def _client_to_bus(self):
        buf, authed = b'', False
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                buf += data
                if not authed:
                    i = buf.find(b'BEGIN\r\n')
                    if i < 0:
                        continue
                    self.down.sendall(buf[:i + 7])
                    buf, authed = buf[i + 7:], True
                while True:
                    h = _parse_header(buf)
                    if h is None:
                        break
                    total, mtype, serial, fields = h
                    if mtype == 1 and fields.get(6) == 'org.freedesktop.DBus' and fields.get(3) in self.members:
                        with self.lock:
                            if self.armed:
                                self.watched[serial] = fields[3]
                    self.down.sendall(buf[:total])
                    buf = buf[total:]
        except OSError:
            pass
        finally:
            try:
                self.down.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _bus_to_client(self):
        buf, authed = b'', False
        try:
            while True:
                data = self.down.recv(65536)
                if not data:
                    break
                buf += data
                if not authed:
                    # the server's auth lines (OK, AGREE_UNIX_FD, ...) until the first message
                    while buf and buf[0:1] != b'l':
                        i = buf.find(b'\r\n')
                        if i < 0:
                            break
                        line, buf = buf[:i + 2], buf[i + 2:]
                        self.client.sendall(line)
                    if buf[0:1] == b'l':
                        authed = True
                    else:
                        continue
                while True:
                    h = _parse_header(buf)
                    if h is None:
                        break
                    total, mtype, serial, fields = h
                    msg, buf = buf[:total], buf[total:]
                    with self.lock:
                        if mtype in (2, 3) and fields.get(5) in self.watched:
                            member = self.watched.pop(fields[5])
                            if self.armed:
                                self.held.append((member, msg))
                                continue
                        self.client.sendall(msg)
        except OSError:
            pass
        finally:
            try:
                self.client.shutdown(socket.SHUT_WR)
            except OSError:
                pass
