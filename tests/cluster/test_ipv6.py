#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""IPv6 on the namespace harness (issue 13 §3): an IPv6-only cluster that forms by multicast
discovery on ff12::2e50 alone, serves and fails over; a cluster with link-local addresses only
and static Peers= with a scope ("fe80::ed:2%veth0"), multicast dropped; a mixed cluster of an
IPv6-only node and two dual-stack ones, where every pair talks on a family both have.

Every address is one the harness gives its own namespaces (2001:db8:ed::K, fe80::ed:K,
198.18.0.K); nothing is sent on the host's interfaces. Exits 77 when every test skipped."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checker"))
import cluster  # noqa: E402
import netns  # noqa: E402
from test_cluster import ClusterBase, FAILOVER_TIMEOUT  # noqa: E402

GROUP6 = "ff12::2e50"
TEST_TABLE = "edh_ipv6test"


def v4_addresses(node):
    """The IPv4 addresses on the node's veth."""
    out = netns.ns_run(node.ns, [netns.IP, "-4", "-o", "addr", "show", "dev", netns.NODE_IF])
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def tcp_peers(node, port):
    """(local, peer) address strings of the node's established TCP connections on port (either end)."""
    out = netns.ns_run(node.ns, ["ss", "-Htn", "state", "established"])
    conns = []
    for line in out.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        local, peer = f[2], f[3]
        if local.endswith(":%d" % port) or peer.endswith(":%d" % port):
            conns.append((local, peer))
    return conns


def members(node):
    """{name: (address, state, role)} as the node's Members property says."""
    return {str(m[0]): (str(m[1]), str(m[2]), str(m[3])) for m in node.manager_prop("Members")}


class IPv6Test(ClusterBase):
    def raft_leader(self, c):
        roles = {name: v[2] for name, v in members(c.nodes[0]).items()}
        leaders = [n for n, r in roles.items() if r == "leader"]
        self.assertEqual(len(leaders), 1, roles)
        return c.node(leaders[0])

    def kill_leader_and_fail_over(self, c):
        """Candidate a on the Raft leader's node, b on another; SIGKILL the former: b leads."""
        lead = self.raft_leader(c)
        other = [n for n in c.nodes if n is not lead]
        t = c.client(lead).op("enter", "db", "a")
        c.client(other[0]).op("enter", "db", "b")
        self.wait_all(c.nodes, "db", lambda x: x[1:] == ("a", ["a", "b"]), "a to lead on all")
        t_kill = time.monotonic()
        lead.kill()
        self.wait_all(other, "db", lambda x: x[1] == "b" and x[0] > t[0],
                      "b to lead with a higher term on the survivors", FAILOVER_TIMEOUT)
        print("failover after SIGKILL of %s: %.3f s" % (lead.name, time.monotonic() - t_kill))
        return other

    def enter_everywhere(self, c, election):
        """Enter on every node (all but the Raft leader's forward over the channel)."""
        clients = [c.client(n) for n in c.nodes]
        names = []
        for i, cl in enumerate(clients):
            names.append("c%d" % i)
            t = cl.op("enter", election, names[-1])
            self.assertEqual(t[2], names, "read-your-writes on %s" % c.nodes[i].name)
        self.wait_all(c.nodes, election, lambda x: x[2] == names, "every node to see all candidates")

    def test_harness_gives_only_our_ipv6_addresses(self):
        """IPv6 namespaces hold exactly the addresses we assign, usable at once (no DAD), and no
        automatic ones; nothing appears in the root namespace."""
        why = netns.usable()
        if why:
            self.skipTest(why)
        def root_addrs():  # the addresses only: lifetimes tick
            out = netns.run([netns.IP, "-6", "-o", "addr", "show"], check=False)
            return {line.split()[3] for line in out.splitlines() if len(line.split()) > 3}
        root_before = root_addrs()
        c = cluster.Cluster(4, clustered=False, record=False,
                            family={"n1": "v6", "n2": "dual", "n3": "ll", "n4": "v4"})
        self.addCleanup(c.close)
        want = {"n1": {"2001:db8:ed::1/64", "fe80::ed:1/64"},
                "n2": {"2001:db8:ed::2/64", "fe80::ed:2/64"},
                "n3": {"fe80::ed:3/64"}, "n4": set()}
        for n in c.nodes:
            out = netns.ns_run(n.ns, [netns.IP, "-6", "-o", "addr", "show", "dev", netns.NODE_IF])
            got = {line.split()[3] for line in out.splitlines() if line.strip()}
            self.assertEqual(got, want[n.name], out)
            self.assertNotIn("tentative", out)
            self.assertEqual(bool(v4_addresses(n)), n.family in ("v4", "dual"), n.name)
            self.assertEqual(n.addrs[0], n.addr)
        c.partition([["n1"], ["n2", "n3", "n4"]])
        rules = c.node("n1").net.list_rules()
        for a in ("198.18.0.2", "2001:db8:ed::2", "fe80::ed:3"):
            self.assertIn(a, rules)
        root_after = root_addrs()
        self.assertFalse([a for a in root_after - root_before if a.startswith(("2001:db8:ed:", "fe80::ed:"))])

    def test_ipv6_only_multicast_discovery_serves_and_fails_over(self):
        c = self.make(3, family="v6", peers=False)
        for n in c.nodes:
            self.assertEqual(v4_addresses(n), [], n.name)
            n.count_packets("group6", 'iifname "%s" ip6 daddr %s udp dport %d' % (netns.NODE_IF, GROUP6, c.port))
            n.count_packets("out4", 'oifname "%s" meta nfproto ipv4' % netns.NODE_IF, hook="output")
        self.wait_formed(c)
        for n in c.nodes:
            for name, (addr, state, _role) in members(n).items():
                self.assertTrue(addr.startswith(netns.SUBNET6_PREFIX), (n.name, name, addr))
        # discovery keeps running: every node hears the group (no Peers= are configured at all)
        for n in c.nodes:
            cluster.wait_until(lambda: n.packets("group6") > 0, 5, "%s to receive on %s" % (n.name, GROUP6))
        self.enter_everywhere(c, "web")
        self.kill_leader_and_fail_over(c)
        for n in c.nodes:
            self.assertEqual(n.packets("out4"), 0, "%s sent IPv4" % n.name)
        self.check_history(c)

    def test_ipv6_partition_and_heal(self):
        """The harness's faults over IPv6 (ip6 nft rules): a dual-stack node cut from the others on
        both families loses its quorum, the majority serves, and it comes back after the heal."""
        c = self.make(3, family={"n1": "dual", "n2": "v6", "n3": "v6"}, peers=False)
        self.wait_formed(c)
        n1, n2, n3 = c.nodes
        c.client(n1).op("enter", "q", "a", flags=1)
        self.wait_all(c.nodes, "q", lambda x: x[1] == "a", "a to lead on all")
        c.partition([[n1], [n2, n3]])
        self.assertIn("ip6 saddr", n1.net.list_rules())
        cluster.wait_until(lambda: not bool(n1.manager_prop("Quorate")), 10, "n1 Quorate=false")
        self.assertTrue(bool(n2.manager_prop("Quorate")))
        tb = c.client(n2).op("enter", "q2", "b")
        self.assertEqual(tb[1], "b")
        c.heal()
        cluster.wait_until(lambda: bool(n1.manager_prop("Quorate")), 10, "n1 quorate again")
        self.wait_all(c.nodes, "q2", lambda x: x[1] == "b", "n1 to learn q2 after the heal")
        self.check_history(c)

    def test_link_local_only_by_multicast(self):
        """Link-local only, no Peers=: every scope (gossip, channel, Raft) is learnt from where the
        packets arrived."""
        c = self.make(3, family="ll", peers=False)
        self.wait_formed(c)
        for n in c.nodes:
            for name, (addr, _state, _role) in members(n).items():
                self.assertTrue(addr.startswith(netns.LINKLOCAL_PREFIX), (n.name, name, addr))
        self.enter_everywhere(c, "llm")
        self.kill_leader_and_fail_over(c)
        self.check_history(c)

    def test_link_local_only_with_static_peers_and_scope(self):
        # n3's Peers= have no scope: tried on every configured interface with IPv6
        c = self.make(3, start=[], family="ll", peers=True,
                      node_config={"n3": {"Cluster": {"Peers": "fe80::ed:1;[fe80::ed:2]:%d" % 7946}}})
        # Peers= only: the multicast group is dropped on the way out (and counted)
        for n in c.nodes:
            self.assertEqual(v4_addresses(n), [], n.name)
            netns.ns_run(n.ns, ["nft", "-f", "-"], input=(
                "table inet %s {\n chain out {\n  type filter hook output priority -10; policy accept;\n"
                "  ip6 daddr %s counter drop\n }\n}\n" % (TEST_TABLE, GROUP6)))
        with open(c.nodes[0].config_path) as f:
            self.assertIn("Peers=fe80::ed:2%veth0;fe80::ed:3%veth0", f.read())
        for n in c.nodes:
            n.start(wait=False)
        for n in c.nodes:
            n.wait_ready()
        self.wait_formed(c)
        for n in c.nodes:
            for name, (addr, _state, _role) in members(n).items():
                self.assertTrue(addr.startswith(netns.LINKLOCAL_PREFIX), (n.name, name, addr))
            self.assertIn("Raft engine started as server", n.log_tail(100))
            self.assertIn("at [%s]:%d." % (n.addr, c.port), n.log_tail(100))
            drops = netns.ns_run(n.ns, ["nft", "list", "table", "inet", TEST_TABLE])
            self.assertNotIn("packets 0 ", drops, "%s never tried multicast" % n.name)
        # Raft runs over link-local TCP, with the veth as the scope
        lead = self.raft_leader(c)
        cluster.wait_until(lambda: len({p for _l, p in tcp_peers(lead, c.port)} |
                                       {l for l, _p in tcp_peers(lead, c.port)}) >= 2, 10,
                           "Raft connections on the leader")
        for local, peer in tcp_peers(lead, c.port):
            # ss(8) shows the scope with the local end: "[fe80::ed:1]%veth0:7946"
            self.assertTrue(peer.startswith("[fe80::ed:"), peer)
            self.assertTrue(local.startswith("[%s]%%%s:" % (lead.addr, netns.NODE_IF)), local)
        self.enter_everywhere(c, "ll")
        self.kill_leader_and_fail_over(c)
        self.check_history(c)

    def test_mixed_ipv6_only_and_dual_stack(self):
        # n1: IPv6 only; n2, n3: both. n1 reaches both over IPv6, n2 and n3 each other over IPv4
        # (IPv4 first when both sides have both), and the Raft address of n2/n3 in the log is
        # their IPv4 one, which n1 cannot use: it connects to their advertised IPv6 address.
        c = self.make(3, family={"n1": "v6", "n2": "dual", "n3": "dual"}, peers=False)
        n1, n2, n3 = c.nodes
        self.assertEqual(v4_addresses(n1), [])
        n1.count_packets("out4", 'oifname "%s" meta nfproto ipv4' % netns.NODE_IF, hook="output")
        for n in c.nodes:
            n.count_packets("ping6", 'oifname "%s" ip6 daddr %s' % (netns.NODE_IF, GROUP6), hook="output")
        self.wait_formed(c)
        for n in c.nodes:
            m = members(n)
            self.assertTrue(m["n1"][0].startswith(netns.SUBNET6_PREFIX), (n.name, m))
            self.assertTrue(m["n2"][0].startswith(netns.SUBNET_PREFIX), (n.name, m))
            self.assertTrue(m["n3"][0].startswith(netns.SUBNET_PREFIX), (n.name, m))
        self.enter_everywhere(c, "mixed")

        # libraft keeps a connection to each server it sends to: the leader to every follower,
        # a follower to the leader. n1's are IPv6 (the v4 Raft address string of n2/n3 is not
        # usable from it); the dual-stack pair's is IPv4.
        lead = self.raft_leader(c)
        want = [lead] if lead is not n1 else [n2, n3]

        def ends(node):
            return [a for conn in tcp_peers(node, c.port) for a in conn]

        cluster.wait_until(lambda: all(any(a.startswith("[%s]:" % netns.node_addr6(w.k)) for a in ends(n1))
                                       for w in want), 10,
                           "Raft links of n1 to %s over IPv6" % [w.name for w in want])
        if lead is not n1:
            other = n3 if lead is n2 else n2
            cluster.wait_until(lambda: any(a.startswith(netns.node_addr(other.k) + ":") for a in ends(lead)),
                               10, "a Raft link %s - %s over IPv4" % (lead.name, other.name))
        # no Raft link of n1 is IPv4 (it has none)
        for local, peer in tcp_peers(n1, c.port):
            self.assertTrue(peer.startswith("[" + netns.SUBNET6_PREFIX), peer)
        # IPv6 discovery pings come from the IPv6-only node only: the dual-stack ones discover
        # over IPv4 (an IPv4 network sees no IPv6 ping) and answer n1's
        cluster.wait_until(lambda: n1.packets("ping6") > 0, 5, "n1 to ping " + GROUP6)
        self.assertEqual((n2.packets("ping6"), n3.packets("ping6")), (0, 0))
        survivors = self.kill_leader_and_fail_over(c)
        self.assertEqual(n1.packets("out4"), 0, "n1 sent IPv4")
        self.assertTrue(all(n.alive() for n in survivors))
        self.check_history(c)


    def test_mixed_ipv4_only_and_dual_stack(self):
        """An IPv4-only node next to two dual-stack ones: these listen for Raft on [::] (both
        families), and the IPv4-only node gets in over IPv4 to the IPv4 address in the Raft log."""
        c = self.make(3, family={"n1": "v4", "n2": "dual", "n3": "dual"}, peers=False)
        n1, n2, n3 = c.nodes
        self.wait_formed(c)
        for n in c.nodes:
            for name, (addr, _state, _role) in members(n).items():
                self.assertTrue(addr.startswith(netns.SUBNET_PREFIX), (n.name, name, addr))
        for n in (n2, n3):
            listen = netns.ns_run(n.ns, ["ss", "-Htln", "sport", "= :%d" % c.port])
            self.assertIn("[::]:%d" % c.port, listen.replace("*:%d" % c.port, "[::]:%d" % c.port), listen)
        self.enter_everywhere(c, "mixed4")
        lead = self.raft_leader(c)

        def n1_linked():
            return [conn for conn in tcp_peers(n1, c.port)
                    if any(netns.node_addr(x.k) + ":" in a for x in (n2, n3) for a in conn)]
        cluster.wait_until(n1_linked, 10, "a Raft link of n1 over IPv4")
        self.kill_leader_and_fail_over(c)
        print("Raft leader was %s" % lead.name)
        self.check_history(c)


def main():
    why = netns.usable()
    if why:
        print("SKIP: cluster tests need root and ip netns: %s" % why)
        return 77
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(IPv6Test)
    if len(sys.argv) > 1:
        suite = unittest.defaultTestLoader.loadTestsFromNames(sys.argv[1:], sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    if not res.wasSuccessful():
        return 1
    if res.testsRun and len(res.skipped) == res.testsRun:
        print("SKIP: every test skipped: %s" % res.skipped[0][1])
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
