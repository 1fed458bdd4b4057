#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Online key rotation (issue 11 §4, KEY ROTATION in electiond.conf(5)): a running 3-node cluster
under client load (Enter/Leave in a loop, alternately through two nodes) moves from its old key to
a new one in three reload steps, each a SIGHUP to every daemon's pid in turn: install the new key
(KeyDirectory=), switch the primary (PrimaryKey=), remove the old key (KeyFile= line gone). No call
fails (in particular none with NoQuorum), the term of a steady election does not change on any
node, and afterwards a node that holds only the old key cannot join, while the same node with the
new key can.

KeyRotationEncrypted runs the same with [Cluster] Encrypt=yes on every node (issue 13 §4): every
packet is sealed under the primary and opened under any installed key, so the same three steps
work, and the old-key node stays out just the same."""

import hashlib
import os
import re
import secrets
import signal
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402

NEW_KEY = 'new.key'


def key_tag(data):
    return hashlib.sha256(data).hexdigest()[:8]


class KeyRotation(unittest.TestCase):
    encrypt = False

    def setUp(self):
        why = netns.usable()
        if why:
            self.skipTest(why)
        config = {"Node": {"CommitTimeoutSec": "5"}}
        if self.encrypt:
            config["Cluster"] = {"Encrypt": "yes"}
        # n4 is set up on the fabric but started only at the end
        self.c = cluster.Cluster(4, bootstrap_expect=3, config=config)
        self.addCleanup(self.c.close)
        with open(self.c.key_file, 'rb') as f:
            self.old = f.read()
        self.new = secrets.token_hex(32).encode()
        self.failures = []
        self.ops = 0
        self.members = self.c.nodes[:3]
        for n in self.c.nodes:
            n.keys_dir = os.path.join(n.dir, 'keys.d')
            os.makedirs(n.keys_dir)
            n.reloads = 0

    # --- config ---------------------------------------------------------------------------
    def write_config(self, node, key_dir=True, key_file=True, primary=None):
        cfg = self.c.node_config.setdefault(node.name, {}).setdefault('Cluster', {})
        cfg.pop('KeyDirectory', None)
        cfg.pop('PrimaryKey', None)
        if key_dir:
            cfg['KeyDirectory'] = node.keys_dir
        if primary:
            cfg['PrimaryKey'] = primary
        node.write_config()
        if not key_file:
            with open(node.config_path) as f:
                text = f.read()
            with open(node.config_path, 'w') as f:
                f.write(re.sub(r'^KeyFile=.*\n', '', text, flags=re.M))

    def log(self, node):
        with open(os.path.join(node.dir, 'electiond.log'), errors='replace') as f:
            return f.read()

    # --- load -----------------------------------------------------------------------------
    def one_op(self):
        """One Enter or Leave through n1 or n3, alternately; failures are collected."""
        client = self.clients[self.ops % 2]
        op = 'enter' if (self.ops // 2) % 2 == 0 else 'leave'
        self.ops += 1
        try:
            client.op(op, 'load', 'c%d' % (self.ops % 2), timeout=10)
        except Exception as e:  # dbus.DBusException: its name says why
            name = e.get_dbus_name() if hasattr(e, 'get_dbus_name') else str(e)
            self.failures.append((op, name))

    def reload_all(self, expect_log):
        """SIGHUP to each member in turn (pids we started); the load goes on while we wait."""
        for n in self.members:
            n.reloads += 1
            want = n.reloads
            os.kill(n.daemon.pid, signal.SIGHUP)
            wait_until(lambda: (self.one_op(), self.log(n).count('Reload done') >= want)[1], 20,
                       '%s to finish reload %d' % (n.name, want))
            self.assertIn(expect_log, self.log(n).split('Reloading the configuration')[-1],
                          '%s: %s' % (n.name, self.log(n)[-3000:]))
            self.assertNotIn('keeping the running keys', self.log(n))
            for _ in range(3):
                self.one_op()

    def test_rotation_under_load(self):
        c = self.c
        n1, n2, n3, n4 = c.nodes
        for n in self.members:
            self.write_config(n, key_dir=True)
            with open(os.path.join(n.keys_dir, 'old.key'), 'wb') as f:
                f.write(self.old)   # the same bytes as KeyFile=: one key
        c.start_buses()
        for n in self.members:
            n.start(wait=False)
        for n in self.members:
            n.wait_ready()
        self.clients = [c.client('n1'), c.client('n3')]
        steady = c.client('n2').op('enter', 'steady', 'keeper', flags=1)
        wait_until(lambda: all(n.get_term('steady') == steady for n in self.members), 10,
                   'every node to see the steady term')
        for _ in range(10):
            self.one_op()
        self.assertEqual(self.failures, [])

        # 1. install the new key everywhere; KeyFile= (old) stays primary
        for n in self.members:
            with open(os.path.join(n.keys_dir, NEW_KEY), 'wb') as f:
                f.write(self.new)
        self.reload_all('keys reloaded: 2 installed, sending under key %s%s'
                        % (key_tag(self.old), ', encrypted' if self.encrypt else '.'))
        # 2. switch the primary
        for n in self.members:
            self.write_config(n, primary=NEW_KEY)
        self.reload_all('keys reloaded: 2 installed, sending under key %s%s'
                        % (key_tag(self.new), ', encrypted' if self.encrypt else '.'))
        # 3. remove the old key: its file and the KeyFile= line
        for n in self.members:
            os.unlink(os.path.join(n.keys_dir, 'old.key'))
            self.write_config(n, primary=NEW_KEY, key_file=False)
        self.reload_all('keys reloaded: 1 installed, sending under key %s%s'
                        % (key_tag(self.new), ', encrypted' if self.encrypt else '.'))
        for _ in range(10):
            self.one_op()

        self.assertEqual([f for f in self.failures if 'NoQuorum' in f[1]], [])
        self.assertEqual(self.failures, [])
        self.assertGreater(self.ops, 30)
        for n in self.members:
            self.assertEqual(n.get_term('steady'), steady, n.name)
            self.assertTrue(n.daemon.alive(), n.name)
            self.assertTrue(bool(n.manager_prop('Quorate')), n.name)
        # every node's recorder saw only the steady election's first term
        steady_terms = {r['term'] for r in c.history() if r.get('type') == 'term' and r.get('election') == 'steady'}
        self.assertEqual(steady_terms, {steady[0]})

        # a node with only the old key cannot talk to the cluster ...
        self.write_config(n4, key_dir=False)   # KeyFile= = the old key
        n4.start(wait=False)

        def n4_known():
            return any(str(m[0]) == 'n4' for m in n1.manager_prop('Members'))

        def n4_quorate():
            try:
                return n4.has_name() and bool(n4.manager_prop('Quorate'))
            except Exception:
                return False
        try:
            wait_until(lambda: n4_known() or n4_quorate(), 4, 'n4 to get in with the old key')
            self.fail('n4 got in with the removed key: %s' % n1.manager_prop('Members'))
        except TimeoutError:
            pass
        self.assertTrue(n4.daemon.alive(), n4.log_tail())
        # ... and with the new key the same node joins
        n4.terminate()
        with open(os.path.join(n4.keys_dir, NEW_KEY), 'wb') as f:
            f.write(self.new)
        self.write_config(n4, key_dir=True, key_file=False)
        n4.start(wait=False)
        wait_until(n4_known, 20, 'n4 to join with the new key')
        wait_until(n4_quorate, 20, 'n4 to be quorate with the new key')
        if self.encrypt:
            for n in c.nodes:
                log = self.log(n)
                self.assertNotIn('encryption settings differ', log, n.name)
                self.assertNotIn('Encrypt=no', log, n.name)


class KeyRotationEncrypted(KeyRotation):
    encrypt = True


if __name__ == '__main__':
    unittest.main(verbosity=2)
