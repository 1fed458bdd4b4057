# SPDX-License-Identifier: LGPL-2.1-or-later
"""Network namespaces, veth pairs, a bridge and nftables fault rules for the cluster harness.

Safety rules (see README.md):
  * Nothing is created in the host's root network namespace: the bridge lives in a "switch"
    namespace of its own, every veth pair is created there and one end is moved into a node
    namespace at creation time.
  * Addresses come only from 198.18.0.0/15 (RFC 2544 benchmark range); IPv6 is disabled in our
    namespaces so that no link-local address appears either — unless a node is given IPv6
    (family "v6", "dual" or "ll"): then it gets only addresses we assign, 2001:db8:ed::K/64
    (RFC 3849 documentation range) and/or fe80::ed:K/64, with automatic link-local addresses,
    router advertisements and duplicate address detection off in its namespace.
  * Every name carries a run prefix "edh<pid>-<k>" so that parallel runs never collide and
    leftovers of a crashed run (pid no longer alive) can be found and removed.
  * Every nft table we add is our own named table ("edh_fault") inside a node namespace, and all
    its rules match only the node's veth, so loopback traffic is never touched.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile

IP = shutil.which("ip") or "/usr/sbin/ip"
NFT = shutil.which("nft") or "/usr/sbin/nft"

NAME_RE = re.compile(r"^edh(\d+)-(\d+)-(sw|n\d+)$")
TMPDIR_RE = re.compile(r"^edh(\d+)-(\d+)-")
BRIDGE = "br0"
NODE_IF = "veth0"
NFT_TABLE = "edh_fault"
SUBNET_PREFIX = "198.18.0."   # node k gets 198.18.0.k/24
PREFIXLEN = 24
SUBNET6_PREFIX = "2001:db8:ed::"   # node k gets 2001:db8:ed::k/64 (IPv6 documentation range)
LINKLOCAL_PREFIX = "fe80::ed:"     # and fe80::ed:k/64 on its veth
PREFIXLEN6 = 64
# Address families of a node: IPv4 only (the default), IPv6 only (global + link-local), both,
# or IPv6 link-local only.
FAMILIES = ("v4", "v6", "dual", "ll")


class NetnsError(RuntimeError):
    pass


def run(argv, check=True, input=None, timeout=30):
    """Runs argv, returns stdout; raises NetnsError with stderr on failure when check."""
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise NetnsError("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr.strip()))
    return p.stdout


def ns_argv(ns, argv):
    """argv to run a command inside namespace ns (ip netns exec execs it: same pid)."""
    return [IP, "netns", "exec", ns] + list(argv)


def ns_run(ns, argv, check=True, input=None, timeout=30):
    return run(ns_argv(ns, argv), check=check, input=input, timeout=timeout)


def list_netns():
    out = run([IP, "netns", "list"], check=False)
    # lines look like "name" or "name (id: 3)"
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def ns_pids(ns):
    out = run([IP, "netns", "pids", ns], check=False)
    return [int(x) for x in out.split() if x.isdigit()]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def usable():
    """None if namespaces work here, else the reason why not (for a clean skip)."""
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists(IP):
        return "ip(8) not found"
    probe = "edh%d-0-sw" % os.getpid()
    try:
        run([IP, "netns", "add", probe])
    except (NetnsError, OSError) as e:
        return "ip netns unusable: %s" % e
    try:
        run([IP, "netns", "del", probe], check=False)
    except OSError:
        pass
    return None


def kill_pids(pids, sig=signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def delete_namespaces(names):
    for ns in names:
        # Processes left inside are ours (we started everything in our namespaces).
        kill_pids(ns_pids(ns))
        run([IP, "netns", "del", ns], check=False)


def cleanup_stale():
    """Removes namespaces and temp dirs of earlier harness runs whose process is gone."""
    stale = [ns for ns in list_netns()
             if NAME_RE.match(ns) and not pid_alive(int(NAME_RE.match(ns).group(1)))]
    delete_namespaces(stale)
    tmp = tempfile.gettempdir()
    for entry in os.listdir(tmp):
        m = TMPDIR_RE.match(entry)
        if m and not pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join(tmp, entry), ignore_errors=True)
    return stale


def node_addr(k):
    assert 1 <= k <= 254
    return SUBNET_PREFIX + str(k)


def node_addr6(k):
    assert 1 <= k <= 254
    return SUBNET6_PREFIX + "%x" % k


def node_linklocal(k):
    assert 1 <= k <= 254
    return LINKLOCAL_PREFIX + "%x" % k


def node_addrs(k, family):
    """Every address node k has on its veth, the primary one (Node.addr) first."""
    assert family in FAMILIES, family
    return {"v4": [node_addr(k)],
            "v6": [node_addr6(k), node_linklocal(k)],
            "dual": [node_addr(k), node_addr6(k), node_linklocal(k)],
            "ll": [node_linklocal(k)]}[family]


class Fabric:
    """The switch namespace with its bridge, plus node namespaces attached to it."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.switch = prefix + "-sw"
        self.namespaces = []     # every namespace we created, switch first
        self.nodes = {}          # name -> NodeNet

    def _add_ns(self, ns, ipv6=False):
        run([IP, "netns", "add", ns])
        self.namespaces.append(ns)
        if ipv6:
            # IPv6 with only the addresses we assign: no automatic link-local address (mode 1 =
            # none), no router advertisements or solicitations, no DAD (usable at once).
            ns_run(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0",
                        "net.ipv6.conf.default.disable_ipv6=0",
                        "net.ipv6.conf.default.addr_gen_mode=1", "net.ipv6.conf.all.accept_dad=0",
                        "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_ra=0",
                        "net.ipv6.conf.default.accept_ra=0", "net.ipv6.conf.default.router_solicitations=0"])
        else:
            # No IPv6 (so no link-local address outside our range); lo up for local services.
            ns_run(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1"], check=False)
        run([IP, "-n", ns, "link", "set", "lo", "up"])

    def create_switch(self):
        self._add_ns(self.switch)
        run([IP, "-n", self.switch, "link", "add", BRIDGE, "type", "bridge",
             "stp_state", "0", "mcast_snooping", "0"])
        run([IP, "-n", self.switch, "link", "set", BRIDGE, "up"])

    def add_node(self, name, k, family="v4"):
        ns = "%s-%s" % (self.prefix, name)
        addrs = node_addrs(k, family)
        self._add_ns(ns, ipv6=family != "v4")
        port = name  # switch-side port name, unique inside the switch namespace
        # Created inside the switch namespace; the peer goes straight into the node namespace.
        run([IP, "-n", self.switch, "link", "add", port, "type", "veth",
             "peer", "name", NODE_IF, "netns", ns])
        run([IP, "-n", self.switch, "link", "set", port, "master", BRIDGE, "up"])
        for a in addrs:
            if ":" in a:
                run([IP, "-n", ns, "-6", "addr", "add", "%s/%d" % (a, PREFIXLEN6), "dev", NODE_IF, "nodad"])
            else:
                run([IP, "-n", ns, "addr", "add", "%s/%d" % (a, PREFIXLEN), "dev", NODE_IF])
        run([IP, "-n", ns, "link", "set", NODE_IF, "up"])
        if family in ("v4", "dual"):
            # Multicast leaves through the veth without relying on a default route.
            run([IP, "-n", ns, "route", "add", "224.0.0.0/4", "dev", NODE_IF])
        nn = NodeNet(self, name, ns, addrs[0], port, addrs=addrs, family=family)
        self.nodes[name] = nn
        nn.apply_rules()
        return nn

    def bridge_set(self, up):
        run([IP, "-n", self.switch, "link", "set", BRIDGE, "up" if up else "down"])

    def destroy(self):
        # Nodes first so veth pairs vanish with them, then the switch.
        delete_namespaces(reversed(self.namespaces))
        self.namespaces = []


def split_families(addrs):
    """[("ip", [v4...]), ("ip6", [v6...])], the non-empty ones, sorted."""
    v4 = sorted(a for a in addrs if ":" not in a)
    v6 = sorted(a for a in addrs if ":" in a)
    return [(p, l) for p, l in (("ip", v4), ("ip6", v6)) if l]


class NodeNet:
    """One node's namespace and its fault state, rendered into one nft table."""

    def __init__(self, fabric, name, ns, addr, port, addrs=None, family="v4"):
        self.fabric = fabric
        self.name = name
        self.ns = ns
        self.addr = addr
        self.addrs = list(addrs or [addr])  # every address (IPv4 and IPv6), addr first
        self.family = family
        self.port = port
        self.drop_in = set()    # addresses whose packets we drop on input
        self.drop_out = set()   # addresses we drop packets to on output
        self.loss = 0           # percent, 0 = none
        self.loss_peers = set() # lossy addresses: their input rule covers packets to them

    def set_link(self, up):
        run([IP, "-n", self.ns, "link", "set", NODE_IF, "up" if up else "down"])

    def clear_faults(self):
        self.drop_in.clear()
        self.drop_out.clear()
        self.loss = 0
        self.loss_peers.clear()

    def rules_script(self):
        """The whole table, recreated atomically by one nft transaction."""
        lines = ["table inet %s {}" % NFT_TABLE, "delete table inet %s" % NFT_TABLE,
                 "table inet %s {" % NFT_TABLE,
                 "  chain input {", "    type filter hook input priority 0; policy accept;"]
        for proto, addrs in split_families(self.drop_in):
            lines.append('    iifname "%s" %s saddr { %s } drop' % (NODE_IF, proto, ", ".join(addrs)))
        if self.loss:
            lines.append('    iifname "%s" numgen random mod 100 < %d drop' % (NODE_IF, self.loss))
        lines += ["  }", "  chain output {", "    type filter hook output priority 0; policy accept;"]
        for proto, addrs in split_families(self.drop_out):
            lines.append('    oifname "%s" %s daddr { %s } drop' % (NODE_IF, proto, ", ".join(addrs)))
        if self.loss:
            # Packets to a lossy peer already meet its input rule: drop only the rest here, so
            # every path touching a lossy node loses P% once, not twice.
            if self.loss_peers and not any(":" in a for a in self.loss_peers):
                lines.append('    oifname "%s" ip daddr != { %s } numgen random mod 100 < %d drop'
                             % (NODE_IF, ", ".join(sorted(self.loss_peers)), self.loss))
            elif self.loss_peers:
                # "not to a lossy peer" over both families: return for those, then drop
                lines.append('    oifname "%s" jump lossy' % NODE_IF)
            else:
                lines.append('    oifname "%s" numgen random mod 100 < %d drop' % (NODE_IF, self.loss))
        lines += ["  }"]
        if self.loss and any(":" in a for a in self.loss_peers):
            lines += ["  chain lossy {"]
            for proto, addrs in split_families(self.loss_peers):
                lines.append("    %s daddr { %s } return" % (proto, ", ".join(addrs)))
            lines += ["    numgen random mod 100 < %d drop" % self.loss, "  }"]
        lines += ["}"]
        return "\n".join(lines) + "\n"

    def apply_rules(self):
        ns_run(self.ns, [NFT, "-f", "-"], input=self.rules_script())

    def list_rules(self):
        return ns_run(self.ns, [NFT, "list", "table", "inet", NFT_TABLE])
