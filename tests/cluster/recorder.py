#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""History recorder for one node, and the client-operation logger used by scenarios.

As a program (started by cluster.Node.start_recorder inside the node's namespace):

    recorder.py --bus unix:path=... --node n1 --out rec-n1.jsonl

it connects to the node's private bus, subscribes (path_namespace=/org/electiond/Election1) to
TermChanged and PropertiesChanged (Election: LocalLeader, Term; Manager: Quorate) plus
NameOwnerChanged of org.electiond.Election1, prints "ready" once the match rules are in place, and
appends one JSON object per line, stamped with time.monotonic_ns() (CLOCK_MONOTONIC: one clock for
every namespace of the host):

    {"t", "node", "type": "term", "election", "term", "leader", "candidates", "src"}
    {"t", "node", "type": "local_leader", "election", "value", "term", "src"}
    {"t", "node", "type": "quorate", "value", "src"}
    {"t", "node", "type": "owner", "owner"}          daemon appeared ("" = its bus name vanished)

"src" is "signal", "prop" (PropertiesChanged), "snapshot" (read when the daemon appeared) or
"probe" (read on request: a line "probe" on stdin, sent by the harness after SIGCONT or a heal).

Client records ({"type": "invoke"/"ok"/"fail", "op", "election", "id", "node", "owner", "client",
"req"}) are written by ClientLog in the harness process; see Client below.
"""

import argparse
import itertools
import json
import os
import sys
import time

BUS_NAME = "org.electiond.Election1"
ROOT = "/org/electiond/Election1"
ELECTION_PREFIX = ROOT + "/election/"
MANAGER_IFACE = "org.electiond.Election1.Manager"
ELECTION_IFACE = "org.electiond.Election1.Election"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
CALL_TIMEOUT = 3.0


def path_decode(path):
    """Inverse of sd_bus_path_encode() for the last label: "_" is "", "_xx" is the byte 0xxx."""
    if not path.startswith(ELECTION_PREFIX):
        return None
    label = path[len(ELECTION_PREFIX):]
    if "/" in label:
        return None
    if label == "_":
        return ""
    out = bytearray()
    i = 0
    while i < len(label):
        if label[i] == "_" and i + 3 <= len(label):
            try:
                out.append(int(label[i + 1:i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out += label[i].encode()
        i += 1
    return out.decode("utf-8", errors="replace")


class Recorder:
    def __init__(self, bus_address, node, out, receipt_time=False):
        import dbus
        from dbus.mainloop.glib import DBusGMainLoop
        self.dbus = dbus
        self.node = node
        self.receipt_time = receipt_time
        self.out = open(out, "a", buffering=1)
        self.bus = dbus.bus.BusConnection(bus_address, mainloop=DBusGMainLoop())
        self.terms = {}   # election -> last known term id, to stamp local_leader records
        self.bus.add_message_filter(self.on_message)
        for rule in ("type='signal',interface='%s',member='TermChanged',path_namespace='%s'"
                     % (ELECTION_IFACE, ROOT),
                     "type='signal',interface='%s',member='PropertiesChanged',path_namespace='%s'"
                     % (PROPS_IFACE, ROOT),
                     "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                     "member='NameOwnerChanged',arg0='%s'" % BUS_NAME):
            self.bus.add_match_string(rule)  # blocking: the rule is active once this returns

    def write(self, rec, t=None):
        rec["t"] = t if t is not None else time.monotonic_ns()
        rec["node"] = self.node
        self.out.write(json.dumps(rec, sort_keys=True) + "\n")

    def term_rec(self, election, tid, leader, cands, src, t=None):
        self.terms[election] = int(tid)
        self.write({"type": "term", "election": election, "term": int(tid), "leader": str(leader),
                    "candidates": [str(c) for c in cands], "src": src}, t)

    # --- signals --------------------------------------------------------------------------
    def on_message(self, bus, msg):
        t = time.monotonic_ns()
        if msg.get_type() != 4:  # signals only
            return
        iface, member, path = msg.get_interface(), msg.get_member(), msg.get_path()
        args = msg.get_args_list()
        if member == "NameOwnerChanged" and iface == "org.freedesktop.DBus":
            if len(args) == 3 and str(args[0]) == BUS_NAME:
                self.write({"type": "owner", "owner": str(args[2])}, t)
                if str(args[2]):
                    self.snapshot("snapshot")
            return
        if member == "TermChanged" and iface == ELECTION_IFACE:
            name = path_decode(path)
            if name is not None and len(args) == 3:
                first = name not in self.terms
                self.term_rec(name, args[0], args[1], args[2], "signal", t)
                if first:
                    # The daemon does not announce LocalLeader for an election it just created
                    # (no previous value to compare with): read it.
                    self.read_local_leader(path, name, "read")
            return
        if member == "PropertiesChanged" and iface == PROPS_IFACE and len(args) == 3:
            piface, changed, invalidated = str(args[0]), args[1], [str(x) for x in args[2]]
            if piface == MANAGER_IFACE and path == ROOT:
                if "Quorate" in changed:
                    self.write({"type": "quorate", "value": bool(changed["Quorate"]), "src": "prop"}, t)
                elif "Quorate" in invalidated:
                    self.get_prop(ROOT, MANAGER_IFACE, "Quorate",
                                  lambda v, t2: self.write({"type": "quorate", "value": bool(v),
                                                            "src": "prop"}, t2))
            elif piface == ELECTION_IFACE:
                name = path_decode(path)
                if name is None:
                    return
                if "Term" in changed:
                    tid, leader, cands = changed["Term"]
                    self.term_rec(name, tid, leader, cands, "prop", t)
                elif "TermId" in changed:
                    self.terms[name] = int(changed["TermId"])
                if "LocalLeader" in changed:
                    # The node's own instant of the flip (CLOCK_MONOTONIC µs, sent with it), not
                    # when this process got round to reading the signal: under load that lags by
                    # tens of ms and would show hand-overs that never overlapped as overlaps.
                    when = int(changed.get("LocalLeaderChanged", 0)) * 1000 or t
                    if self.receipt_time:
                        when = t   # the node's clock is not trusted (nemesis clock-rate fault)
                    self.write({"type": "local_leader", "election": name,
                                "value": bool(changed["LocalLeader"]),
                                "term": self.terms.get(name), "src": "prop", "seen": t}, when)
                elif "LocalLeader" in invalidated:
                    self.read_local_leader(path, name, "prop")

    # --- reads (asynchronous: a stopped daemon must not stall the recorder) ----------------
    def call(self, path, iface, method, sig, args, done):
        def ok(*res):
            done(res, time.monotonic_ns())

        def err(e):
            self.write({"type": "recorder_error", "call": method, "error": str(e)})
        self.bus.call_async(BUS_NAME, path, iface, method, sig, args, ok, err,
                            timeout=CALL_TIMEOUT)

    def get_prop(self, path, iface, prop, done):
        self.call(path, PROPS_IFACE, "Get", "ss", (iface, prop), lambda r, t: done(r[0], t))

    def read_local_leader(self, path, name, src):
        """Reads LocalLeader with LocalLeaderChanged (one GetAll) and stamps the record with the
        node's own instant of that value's flip, as for PropertiesChanged: a reply that was on its
        way while the value flipped (it arrives after the flip's signal) must not reopen a claim
        at its receipt time."""
        def done(r, t2):
            props = r[0]
            v = bool(props.get("LocalLeader", False))
            when = int(props.get("LocalLeaderChanged", 0)) * 1000 or t2
            if self.receipt_time:
                when = t2
            self.write({"type": "local_leader", "election": name, "value": v,
                        "term": self.terms.get(name), "src": src, "seen": t2}, when)
        self.call(path, PROPS_IFACE, "GetAll", "s", (ELECTION_IFACE,), done)

    def snapshot(self, src):
        self.get_prop(ROOT, MANAGER_IFACE, "Quorate",
                      lambda v, t: self.write({"type": "quorate", "value": bool(v), "src": src}, t))

        def listed(res, t):
            for name, _tid, _leader, path in res[0]:
                name, path = str(name), str(path)
                self.call(path, ELECTION_IFACE, "GetTerm", "", (),
                          lambda r, t2, name=name: self.term_rec(name, r[0], r[1], r[2], src, t2))
                self.read_local_leader(path, name, src)
        self.call(ROOT, MANAGER_IFACE, "ListElections", "", (), listed)

    def on_stdin(self, fd, cond):
        line = os.read(fd, 4096)
        if not line:  # the harness is gone: so are we
            self.loop.quit()
            return False
        for cmd in line.decode().split():
            if cmd == "probe":
                self.snapshot("probe")
        return True

    def run(self):
        from gi.repository import GLib
        self.loop = GLib.MainLoop()
        if self.bus.name_has_owner(BUS_NAME):
            self.write({"type": "owner", "owner": str(self.bus.get_name_owner(BUS_NAME))})
            self.snapshot("snapshot")
        GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, self.on_stdin)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        self.loop.run()


class Client:
    """A scenario client on one node's bus, logging each operation's invocation and completion.

    Its bus connection is the owner of the candidacies it enters (flags 0); close() ends it and
    records a client_event "disconnect" so the checker knows the candidacies may go."""

    _req = itertools.count(1)   # next() is atomic: clients run in threads

    def __init__(self, node, name, writer):
        import dbus
        self.dbus = dbus
        self.node = node
        self.name = name
        self.writer = writer
        self.bus = dbus.bus.BusConnection(node.bus_address)
        self.owner = str(self.bus.get_unique_name())
        self.closed = False

    def _election(self, election):
        mgr = self.bus.get_object(BUS_NAME, ROOT, introspect=False)
        path = mgr.GetElection(election, dbus_interface=MANAGER_IFACE, timeout=CALL_TIMEOUT)
        return self.bus.get_object(BUS_NAME, path, introspect=False)

    def op(self, op, election, cid="", flags=None, timeout=10):
        """Runs Enter/Leave/Anoint/Promote/Evict/GetTerm; returns (term, leader, candidates).

        Raises dbus.DBusException after logging a "fail" record with the error name."""
        base = {"op": op, "election": election, "id": cid or self.node.name, "node": self.node.name,
                "owner": self.owner, "client": self.name, "req": "%s-%d" % (self.name, next(Client._req))}
        if flags is not None:
            base["flags"] = int(flags)
        self.writer.write(dict(base, type="invoke"))
        method = {"enter": "Enter", "leave": "Leave", "anoint": "Anoint", "promote": "Promote",
                  "evict": "Evict", "get": "GetTerm"}[op]
        try:
            obj = self._election(election)
            args = [] if op == "get" else [cid]
            if op == "enter":
                args.append(self.dbus.UInt64(flags or 0))
            r = getattr(obj, method)(*args, dbus_interface=ELECTION_IFACE, timeout=timeout)
        except self.dbus.DBusException as e:
            self.writer.write(dict(base, type="fail", error=e.get_dbus_name() or str(e),
                                   message=str(e.get_dbus_message() or "")[:200]))
            raise
        res = (int(r[0]), str(r[1]), [str(x) for x in r[2]])
        self.writer.write(dict(base, type="ok", term=res[0], leader=res[1], candidates=res[2]))
        return res

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.bus.close()
        except Exception:
            pass
        self.writer.write({"type": "client_event", "event": "disconnect", "client": self.name,
                           "owner": self.owner, "node": self.node.name})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bus", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--receipt-time", action="store_true",
                    help="stamp LocalLeader flips with their receipt, not the node's own clock")
    a = ap.parse_args()
    Recorder(a.bus, a.node, a.out, a.receipt_time).run()


if __name__ == "__main__":
    main()
