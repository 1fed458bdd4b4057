# SPDX-License-Identifier: LGPL-2.1-or-later
"""Multi-node electiond harness: N nodes in network namespaces on one bridge, each with its own
private dbus-daemon, state dir and config; fault injection; a history of everything.

    with Cluster(3) as c:
        c.start()                        # dbus-daemons, recorders, electiond on every node
        c.node("n1").kill()              # SIGKILL, recorded as a node_event
        c.partition([["n1"], ["n2", "n3"]])
        c.heal()                         # writes "heal" and "healed" records
        records = c.history()            # merged, time-ordered JSON records

Run as root under Debian's /usr/bin/python3. See README.md for the safety rules.
"""

import atexit
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

BUS_NAME = "org.electiond.Election1"
MANAGER_PATH = "/org/electiond/Election1"
MANAGER_IFACE = "org.electiond.Election1.Manager"
ELECTION_IFACE = "org.electiond.Election1.Election"
PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))

_live = set()
_live_lock = threading.Lock()
_handlers_installed = False
_counter = 0


def now_ns():
    # CLOCK_MONOTONIC: one clock for every namespace of this host.
    return time.monotonic_ns()


def wait_until(cond, timeout, what, interval=0.02):
    """Polls cond() until it returns a true value (returned) or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _close_all(*_args):
    with _live_lock:
        clusters = list(_live)
    for c in clusters:
        c.close()


def _on_signal(signum, frame):
    _close_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers():
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_close_all)
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, _on_signal)


class HistoryWriter:
    """Appends JSON records, one per line, flushed at once so a crash loses nothing."""

    def __init__(self, path):
        self.path = path
        self._f = open(path, "a", buffering=1)
        self._lock = threading.Lock()

    def write(self, rec):
        rec.setdefault("t", now_ns())
        line = json.dumps(rec, sort_keys=True)
        with self._lock:
            if self._f:
                self._f.write(line + "\n")
        return rec

    def close(self):
        with self._lock:
            if self._f:
                self._f.close()
                self._f = None


DBUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


class Proc:
    """A process we started, addressed only by its pid."""

    def __init__(self, argv, log_path, env=None, stdin=None, stdout=None, registry=None):
        self.argv = argv
        self.log = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, env=env, stdin=stdin,
                                      stdout=stdout if stdout is not None else self.log,
                                      stderr=self.log, start_new_session=True)
        self.pid = self.popen.pid
        if registry is not None:
            registry.append(self)

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, timeout=10):
        self.signal(signal.SIGKILL)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()

    def terminate(self, timeout=10):
        self.signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.log.close()


class Node:
    def __init__(self, cluster, k):
        self.cluster = cluster
        self.k = k
        self.name = "n%d" % k
        self.dir = os.path.join(cluster.dir, self.name)
        self.state_dir = os.path.join(self.dir, "state")
        os.makedirs(self.state_dir)
        self.bus_socket = os.path.join(self.dir, "bus")
        self.bus_address = "unix:path=" + self.bus_socket
        self.config_path = os.path.join(self.dir, "electiond.conf")
        self.net = None
        self.dbus = None
        self.daemon = None
        self.recorder = None
        self.starts = 0
        self._bus = None
        self.stopped = False
        self.env = {}          # extra environment of the daemon (the nemesis's LD_PRELOAD shims)
        self.electiond = None  # this node's daemon binary (None: the cluster's); the upgrade test swaps it

    @property
    def ns(self):
        return self.net.ns

    @property
    def addr(self):
        return self.net.addr

    @property
    def addrs(self):
        """Every address of the node (IPv4 and IPv6), addr first."""
        return self.net.addrs

    @property
    def family(self):
        return self.net.family

    def peer_entry(self):
        """This node as a Peers= entry of another node: link-local ones with the interface."""
        return self.addr + "%" + netns.NODE_IF if self.addr.startswith("fe80:") else self.addr

    def log(self, event, **kw):
        return self.cluster.log_event(event, node=self.name, **kw)

    # --- config ---------------------------------------------------------------------------
    def write_config(self):
        c = self.cluster
        # No removal of empty elections (issue 14 §1) unless a test asks (extra_config): the
        # history checker's model has none (a removed election reads term 0, then comes back
        # above the term floor rather than at its last term + 1).
        sections = {"Node": {"Name": self.name, "RemoveEmptyElectionsSec": "0"}}
        if c.clustered:
            peers = [n.peer_entry() for n in c.nodes if n is not self] if c.peers else []
            sections["Cluster"] = {
                "Name": c.cluster_name,
                "KeyFile": c.key_file,
                "Interfaces": netns.NODE_IF,
                "Port": str(c.port),
                "BootstrapExpect": str(c.bootstrap_expect if c.bootstrap_expect else len(c.nodes)),
            }
            if peers:
                sections["Cluster"]["Peers"] = ";".join(peers)
        for sec, kv in c.extra_config.items():
            sections.setdefault(sec, {}).update({k: str(v) for k, v in kv.items()})
        for sec, kv in c.node_config.get(self.name, {}).items():
            sections.setdefault(sec, {}).update({k: str(v) for k, v in kv.items()})
        with open(self.config_path, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                for key, val in kv.items():
                    f.write("%s=%s\n" % (key, val))
                f.write("\n")

    # --- processes ------------------------------------------------------------------------
    def start_bus(self):
        conf = os.path.join(self.dir, "dbus.conf")
        with open(conf, "w") as f:
            f.write(DBUS_CONF.format(socket=self.bus_socket))
        self.dbus = Proc(netns.ns_argv(self.ns, ["dbus-daemon", "--config-file=" + conf, "--nofork",
                                                 "--nopidfile", "--print-address=1"]),
                         os.path.join(self.dir, "dbus.log"), stdout=subprocess.PIPE,
                         registry=self.cluster.procs)
        line = self.dbus.popen.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError("%s: dbus-daemon did not start" % self.name)

    def bus(self):
        """A dbus-python connection of the harness to this node's private bus."""
        if self._bus is None:
            import dbus
            self._bus = dbus.bus.BusConnection(self.bus_address)
        return self._bus

    def start_recorder(self):
        self.recorder = Proc(netns.ns_argv(self.ns, [PY, os.path.join(HERE, "recorder.py"),
                                                     "--bus", self.bus_address, "--node", self.name,
                                                     "--out", os.path.join(self.cluster.hist_dir,
                                                                           "rec-%s.jsonl" % self.name)]
                                               + self.cluster.recorder_args),
                             os.path.join(self.dir, "recorder.log"),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             registry=self.cluster.procs)
        line = self.recorder.popen.stdout.readline().decode().strip()
        if line != "ready":
            raise RuntimeError("%s: recorder did not start: %r" % (self.name, line))

    def probe(self):
        """Asks the recorder to read LocalLeader/Quorate/terms now (after a resume or heal)."""
        if self.recorder and self.recorder.alive():
            self.recorder.popen.stdin.write(b"probe\n")
            self.recorder.popen.stdin.flush()

    def start(self, wait=True, env=None):
        env = dict(os.environ, **(env or {}))
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address
        env.update(self.env)
        argv = [self.electiond or self.cluster.electiond, "--config", self.config_path, "--state-dir", self.state_dir]
        argv += self.cluster.extra_args
        self.daemon = Proc(netns.ns_argv(self.ns, argv), os.path.join(self.dir, "electiond.log"), env=env,
                           registry=self.cluster.procs)
        self.starts += 1
        self.stopped = False
        self.log("start", pid=self.daemon.pid, start=self.starts)
        if wait:
            self.wait_ready()

    def has_name(self):
        try:
            return bool(self.bus().name_has_owner(BUS_NAME))
        except Exception:
            return False

    def quorate(self):
        try:
            return bool(self.manager_prop("Quorate"))
        except Exception:
            return False

    def wait_ready(self, timeout=15, quorate=None):
        """Until electiond owns its bus name and, if clustered (or quorate=True), is quorate: a
        clustered node serves from start-up but takes changes only once it holds a lease."""
        quorate = self.cluster.clustered if quorate is None else quorate

        def ready():
            if not self.daemon.alive():
                raise RuntimeError("%s: electiond exited with %s; log:\n%s"
                                   % (self.name, self.daemon.popen.returncode, self.log_tail()))
            return self.has_name() and (not quorate or self.quorate())
        try:
            wait_until(ready, timeout, "%s to own %s%s" % (self.name, BUS_NAME, " and be quorate" if quorate else ""))
        except TimeoutError as e:
            raise TimeoutError("%s; log:\n%s" % (e, self.log_tail())) from None

    def log_tail(self, n=30):
        try:
            with open(os.path.join(self.dir, "electiond.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def kill(self):
        self.log("kill", pid=self.daemon.pid)
        self.daemon.kill()

    def terminate(self):
        self.log("terminate", pid=self.daemon.pid)
        self.daemon.terminate()

    def stop(self):
        self.log("stop", pid=self.daemon.pid)
        self.daemon.signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        self.daemon.signal(signal.SIGCONT)
        self.stopped = False
        self.log("cont", pid=self.daemon.pid)
        self.probe()

    def restart(self, graceful=False, wait=True):
        (self.terminate if graceful else self.kill)()
        self.log("restart")
        self.start(wait=wait)

    def alive(self):
        return self.daemon is not None and self.daemon.alive()

    # --- packet counters (observation only) -------------------------------------------------
    COUNT_TABLE = "edh_count"

    def count_packets(self, name, match, hook="input"):
        """Counts the packets matching the nft expression `match` (e.g. 'iifname "veth0" ip saddr
        198.18.0.3 udp dport 7946') in a table of our own in this node's namespace (hook input or
        output); read with packets(name). Observes only: no verdict, never touches the faults."""
        chain = "in" if hook == "input" else "out"
        script = ("table inet %s {\n  chain %s {\n    type filter hook %s priority -20; policy accept;\n  }\n}\n"
                  "add rule inet %s %s %s counter comment \"%s\"\n"
                  % (self.COUNT_TABLE, chain, hook, self.COUNT_TABLE, chain, match, name))
        netns.ns_run(self.ns, ["nft", "-f", "-"], input=script)

    def packets(self, name):
        out = json.loads(netns.ns_run(self.ns, ["nft", "-j", "list", "table", "inet", self.COUNT_TABLE]))
        return sum(e["counter"]["packets"] for item in out["nftables"]
                   if "rule" in item and item["rule"].get("comment") == name
                   for e in item["rule"]["expr"] if "counter" in e)

    # --- network faults on this node -------------------------------------------------------
    def link_down(self):
        self.net.set_link(False)
        self.log("link_down")

    def link_up(self):
        self.net.set_link(True)
        self.log("link_up")
        self.probe()

    # --- D-Bus helpers ------------------------------------------------------------------------
    def manager(self):
        return self.bus().get_object(BUS_NAME, MANAGER_PATH, introspect=False)

    def manager_prop(self, prop):
        import dbus
        return self.manager().Get(MANAGER_IFACE, prop, dbus_interface=dbus.PROPERTIES_IFACE, timeout=5)

    def election(self, name):
        path = self.manager().GetElection(name, dbus_interface=MANAGER_IFACE, timeout=5)
        return self.bus().get_object(BUS_NAME, path, introspect=False)

    def get_term(self, name):
        t = self.election(name).GetTerm(dbus_interface=ELECTION_IFACE, timeout=5)
        return (int(t[0]), str(t[1]), [str(x) for x in t[2]])

    def snapshot(self):
        """{election: (id, leader, candidates)} for every election this node knows."""
        out = {}
        for name, _tid, _leader, _path in self.manager().ListElections(dbus_interface=MANAGER_IFACE,
                                                                        timeout=5):
            out[str(name)] = self.get_term(str(name))
        return out

    def close_bus(self):
        if self._bus is not None:
            try:
                self._bus.close()
            except Exception:
                pass
            self._bus = None


class Cluster:
    def __init__(self, n, clustered=True, cluster_name="edh", key=None, port=7946, peers=True,
                 bootstrap_expect=None, config=None, node_config=None, record=True,
                 history_path=None, electiond=None, extra_args=(), recorder_args=(), family="v4"):
        global _counter
        _install_handlers()
        netns.cleanup_stale()
        _counter += 1
        self.prefix = "edh%d-%d" % (os.getpid(), _counter)
        self.dir = tempfile.mkdtemp(prefix=self.prefix + "-")
        self.hist_dir = os.path.join(self.dir, "history")
        os.makedirs(self.hist_dir)
        self.history_path = history_path
        self.clustered = clustered
        self.cluster_name = cluster_name
        self.port = port
        self.peers = peers
        self.bootstrap_expect = bootstrap_expect
        self.extra_config = config or {}
        self.node_config = node_config or {}
        self.record = record
        # EDH_DAEMON_ARGS (e.g. "--log-level debug"): for post-mortems with EDH_KEEP_LOGS
        self.extra_args = list(extra_args) + os.environ.get("EDH_DAEMON_ARGS", "").split()
        self.recorder_args = list(recorder_args)
        # address families (netns.FAMILIES): one for every node, or {name: family} ("v4" if absent)
        self.family = family
        self.electiond = electiond or os.environ.get("ELECTIOND") or "electiond"
        self.key_file = os.path.join(self.dir, "cluster.key")
        with open(self.key_file, "w") as f:
            f.write(key if key is not None else secrets.token_hex(32))
        os.chmod(self.key_file, 0o600)
        self.closed = False
        self.writer = HistoryWriter(os.path.join(self.hist_dir, "harness.jsonl"))
        self.clients = []
        self.procs = []   # every process we started, in start order
        self.fabric = netns.Fabric(self.prefix)
        self.nodes = [Node(self, k) for k in range(1, n + 1)]
        with _live_lock:
            _live.add(self)
        try:
            self.fabric.create_switch()
            for node in self.nodes:
                fam = self.family.get(node.name, "v4") if isinstance(self.family, dict) else self.family
                node.net = self.fabric.add_node(node.name, node.k, family=fam)
            for node in self.nodes:
                node.write_config()
            self.log_event("cluster", nodes=[n.name for n in self.nodes],
                           addrs={n.name: n.addr for n in self.nodes},
                           all_addrs={n.name: n.addrs for n in self.nodes},
                           config=self.extra_config)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def node(self, name):
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def _nodes(self, names):
        return [x if isinstance(x, Node) else self.node(x) for x in names]

    def log_event(self, event, **kw):
        rec = {"type": "node_event", "event": event}
        rec.update(kw)
        return self.writer.write(rec)

    # --- processes ------------------------------------------------------------------------
    def start_buses(self):
        for n in self.nodes:
            n.start_bus()
            if self.record:
                n.start_recorder()

    def start(self, wait=True):
        self.start_buses()
        for n in self.nodes:
            n.start(wait=False)
        if wait:
            for n in self.nodes:
                n.wait_ready()
            if self.clustered:
                # each was quorate once; right after forming, a lease may lapse once (a Raft
                # leader change): return when all of them are quorate at one time
                wait_until(lambda: all(n.quorate() for n in self.nodes), 15, "every node to be quorate at once")

    def client(self, node, name=None):
        """A logging scenario client on node's bus (see recorder.Client)."""
        import recorder
        node = node if isinstance(node, Node) else self.node(node)
        c = recorder.Client(node, name or "c%d" % (len(self.clients) + 1), self.writer)
        self.clients.append(c)
        return c

    # --- faults ---------------------------------------------------------------------------
    def partition(self, groups):
        """Two-way: nodes of different groups cannot talk. Nodes in no group stay connected to all."""
        groups = [self._nodes(g) for g in groups]
        for g in groups:
            others = [n for h in groups if h is not g for n in h]
            for n in g:
                n.net.drop_in.update(a for o in others for a in o.addrs)
                n.net.drop_out.update(a for o in others for a in o.addrs)
        self._apply()
        self.log_event("partition", groups=[[n.name for n in g] for g in groups])

    def partition_oneway(self, nodes, from_nodes):
        """Each of nodes drops every packet coming from from_nodes (it can still send to them)."""
        nodes, from_nodes = self._nodes(nodes), self._nodes(from_nodes)
        for n in nodes:
            n.net.drop_in.update(a for o in from_nodes for a in o.addrs)
        self._apply()
        self.log_event("partition_oneway", nodes=[n.name for n in nodes],
                       from_nodes=[n.name for n in from_nodes])

    def reconnect(self, nodes, other_nodes):
        """Partial heal: removes the two-way cut between each of nodes and each of other_nodes
        (and nothing else: every other cut, one-way cut and loss stays). Writes a "reconnect"
        node_event (groups = the two lists) and asks the recorders of both sides to probe."""
        nodes, other_nodes = self._nodes(nodes), self._nodes(other_nodes)
        for side, far in ((nodes, other_nodes), (other_nodes, nodes)):
            for n in side:
                for o in far:
                    for a in o.addrs:
                        n.net.drop_in.discard(a)
                        n.net.drop_out.discard(a)
        self._apply()
        self.log_event("reconnect", groups=[[n.name for n in nodes], [n.name for n in other_nodes]])
        for n in nodes + other_nodes:
            n.probe()

    def loss(self, percent, nodes=None):
        """Drops percent% of the packets on every path that touches one of nodes (default all);
        the other nodes' loss is cleared. Each packet meets one lossy rule, never two."""
        percent = int(percent)
        nodes = self._nodes(nodes) if nodes is not None else self.nodes
        lossy = {a for n in nodes for a in n.addrs}
        for n in self.nodes:   # the lossy set becomes exactly nodes
            n.net.loss = percent if n in nodes else 0
            n.net.loss_peers = set(lossy) - set(n.addrs) if n in nodes else set()
        self._apply()
        self.log_event("loss", percent=percent, nodes=[n.name for n in nodes])

    def bridge_down(self):
        self.fabric.bridge_set(False)
        self.log_event("bridge_down")

    def bridge_up(self):
        self.fabric.bridge_set(True)
        self.log_event("bridge_up")

    def heal(self):
        """Removes every network fault; writes "heal" then "healed" once rules are gone."""
        self.log_event("heal")
        self.fabric.bridge_set(True)
        for n in self.nodes:
            n.net.set_link(True)
            n.net.clear_faults()
        self._apply()
        self.log_event("healed")
        for n in self.nodes:
            n.probe()

    def _apply(self):
        for n in self.nodes:
            n.net.apply_rules()

    # --- checks ---------------------------------------------------------------------------
    def udp_count(self, src, dst, count=20, window=0.5, port=40000, group=None):
        """Sends count datagrams src -> dst inside their namespaces; returns how many arrived.
        The receiver stops window seconds after the first datagram (or after window if none).
        With group (a multicast address), dst joins it on its veth and src sends to it."""
        src, dst = self._nodes([src, dst])
        probe = os.path.join(HERE, "udpprobe.py")
        target = group or dst.addr
        r = subprocess.Popen(netns.ns_argv(dst.ns, [PY, probe, "recv", target, str(port), str(window)]
                                           + ([dst.addr] if group else [])),
                             stdout=subprocess.PIPE, text=True)
        try:
            if r.stdout.readline().strip() != "ready":
                raise RuntimeError("udp receiver did not start")
            netns.ns_run(src.ns, [PY, probe, "send", target, str(port), str(count)]
                         + ([src.addr] if group else []))
            out, _ = r.communicate(timeout=window + 30)
        finally:
            if r.poll() is None:
                r.kill()
                r.wait()
        return int(out.strip())

    def send_udp(self, src, addr, port, payload):
        """Sends datagrams from inside src's namespace (garbage tests): payload is bytes, or a
        list of bytes sent one after the other, all from one process."""
        src = self._nodes([src])[0]
        payloads = [payload] if isinstance(payload, (bytes, bytearray)) else list(payload)
        code = ("import json,socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "for h in json.load(sys.stdin): s.sendto(bytes.fromhex(h), (%r, %d))" % (addr, int(port)))
        p = subprocess.run(netns.ns_argv(src.ns, [PY, "-c", code]),
                           input=json.dumps([bytes(x).hex() for x in payloads]).encode(),
                           capture_output=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("send_udp failed: %s" % p.stderr.decode(errors="replace"))

    def live_nodes(self):
        return [n for n in self.nodes if n.alive() and not n.stopped]

    def wait_converged(self, timeout=10, nodes=None):
        """Waits until every live node reports the same set of elections and terms."""
        nodes = nodes or self.live_nodes()

        def same():
            try:
                snaps = [n.snapshot() for n in nodes]
            except Exception:
                return None
            # wrapped: an empty snapshot is a valid (falsy) agreement
            return [snaps[0]] if all(s == snaps[0] for s in snaps) else None
        return wait_until(same, timeout, "nodes %s to converge" % [n.name for n in nodes], 0.05)[0]

    def write_final(self):
        """Final snapshot of every live node, for the checker's missing-change rule."""
        for n in self.live_nodes():
            try:
                snap = n.snapshot()
            except Exception as e:
                self.log_event("final_failed", node=n.name, error=str(e))
                continue
            self.writer.write({"type": "final", "node": n.name,
                               "elections": {k: {"term": v[0], "leader": v[1], "candidates": v[2]}
                                             for k, v in snap.items()}})

    def history(self):
        """Every record of this run so far, ordered by time (stable for equal stamps)."""
        recs = []
        for fn in sorted(os.listdir(self.hist_dir)):
            if not fn.endswith(".jsonl"):
                continue
            with open(os.path.join(self.hist_dir, fn)) as f:
                for line in f:
                    line = line.strip()
                    if line:
                        try:
                            recs.append(json.loads(line))
                        except ValueError:
                            pass  # a line cut short by a kill
        recs.sort(key=lambda r: r.get("t", 0))
        return recs

    def save_history(self, path):
        with open(path, "w") as f:
            for r in self.history():
                f.write(json.dumps(r, sort_keys=True) + "\n")

    # --- teardown -------------------------------------------------------------------------
    def close(self):
        if self.closed:
            return
        self.closed = True
        for c in self.clients:
            c.close()
        for n in self.nodes:
            n.close_bus()
        for p in reversed(self.procs):
            p.kill()
        try:
            if self.history_path:
                self.save_history(self.history_path)
        except OSError:
            pass
        self.writer.close()
        self.fabric.destroy()
        keep = os.environ.get("EDH_KEEP_LOGS")
        if keep:
            # for post-mortems: every node's logs, under DIR/<run dir name>/
            for n in self.nodes:
                dst = os.path.join(keep, os.path.basename(self.dir), n.name)
                os.makedirs(dst, exist_ok=True)
                for f in ("electiond.log", "recorder.log"):
                    try:
                        shutil.copy(os.path.join(self.dir, n.name, f), dst)
                    except OSError:
                        pass
        shutil.rmtree(self.dir, ignore_errors=True)
        with _live_lock:
            _live.discard(self)

    def pids(self):
        """Every pid this cluster started (for teardown assertions)."""
        return [p.pid for p in self.procs]
