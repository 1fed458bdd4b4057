#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The systemd --user harness itself: it comes up in its own cgroups and mount namespace, touches
nothing else, and tears down completely (even processes that ignore SIGTERM and outlive their unit)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdmanager  # noqa: E402


def mountinfo():
    """The host's mounts where the harness mounts inside its namespace (other tests on this
    machine may add unrelated mounts, e.g. /run/netns, meanwhile)."""
    with open('/proc/self/mountinfo') as f:
        mounts = [l.split()[3:5] for l in f]
    return sorted(' '.join(m) for m in mounts
                  if m[1] == '/dev/console' or m[1] == '/run/systemd' or m[1].startswith('/run/systemd/'))


def cgroup_of(pid):
    with open(f'/proc/{pid}/cgroup') as f:
        return f.read()


class HarnessTest(unittest.TestCase):
    def test_isolated_and_clean(self):
        before_mounts = mountinfo()
        before_pid1 = cgroup_of(1)
        before_self = cgroup_of(os.getpid())
        m = sdmanager.UserManager()
        try:
            m.start()
            self.assertTrue(m.in_our_cgroup(m.manager_pid))
            self.assertFalse(m.in_our_cgroup(1))
            self.assertFalse(m.in_our_cgroup(os.getpid()))
            self.assertEqual(cgroup_of(1), before_pid1, 'PID 1 was moved')
            self.assertEqual(cgroup_of(os.getpid()), before_self, 'the test runner was moved')
            # The tmpfs on /run/systemd and the console bind stay inside the manager's namespace.
            self.assertEqual(mountinfo(), before_mounts)
            self.assertNotEqual(os.readlink(f'/proc/{m.manager_pid}/ns/mnt'), os.readlink('/proc/self/ns/mnt'))

            # A unit whose child ignores SIGTERM and is left behind on stop (KillMode=none).
            m.add_unit('stubborn.service', '[Service]\nKillMode=none\n'
                       "ExecStart=/bin/sh -c 'trap \"\" TERM; sleep 1000 & echo $! > %t/stubborn.pid; wait'\n")
            m.add_unit('plain.service', '[Service]\nExecStart=/bin/sleep 1000\n')
            m.reload()
            m.start_unit('stubborn.service')
            m.start_unit('plain.service')
            self.assertEqual(m.wait_state('stubborn.service', 'active'), 'active')
            self.assertEqual(m.wait_state('plain.service', 'active'), 'active')
            plain_pid = m.main_pid('plain.service')
            pidfile = os.path.join(m.dir, 'stubborn.pid')
            sdmanager_deadline_wait(lambda: os.path.exists(pidfile) and open(pidfile).read().strip())
            stubborn_pid = int(open(pidfile).read())
            self.assertTrue(m.in_our_cgroup(plain_pid))
            self.assertTrue(m.in_our_cgroup(stubborn_pid))
            manager_pid = m.manager_pid
            cgroups = [p for _mnt, p, _k in m.cgroups]
            tmp = m.dir
        finally:
            m.stop()
        for pid in (manager_pid, plain_pid, stubborn_pid):
            self.assertFalse(os.path.exists(f'/proc/{pid}') and 'zombie' not in open(f'/proc/{pid}/status').read().lower(),
                             f'pid {pid} survived teardown')
        for p in cgroups:
            self.assertFalse(os.path.exists(p), f'{p} left behind')
        self.assertFalse(os.path.exists(tmp))
        self.assertEqual(mountinfo(), before_mounts)
        self.assertEqual(cgroup_of(1), before_pid1)
        # No cgroup of ours in any hierarchy (the manager must not have made any elsewhere).
        for root, dirs, _ in os.walk('/sys/fs/cgroup'):
            for d in dirs:
                self.assertFalse(d.startswith(m.tag), os.path.join(root, d))
            if root.count('/') > 5:
                dirs[:] = []


class SignalTeardownTest(unittest.TestCase):
    def test_sigterm_to_test_process_tears_down(self):
        # A test process killed by SIGTERM (meson's timeout) still removes its manager.
        import signal
        import subprocess
        code = ('import sys, time; sys.path.insert(0, %r); import sdmanager; '
                'm = sdmanager.UserManager().start(); '
                'print(m.manager_pid, *[p for _m, p, _k in m.cgroups], flush=True); time.sleep(60)'
                % os.path.dirname(os.path.abspath(__file__)))
        p = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline().split()
            self.assertTrue(line, 'child did not start a manager')
            manager_pid, cgroups = int(line[0]), line[1:]
            self.assertTrue(os.path.exists(f'/proc/{manager_pid}'))
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=20), 128 + signal.SIGTERM)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertFalse(os.path.exists(f'/proc/{manager_pid}/cgroup') and
                         'zombie' not in open(f'/proc/{manager_pid}/status').read().lower())
        for c in cgroups:
            self.assertFalse(os.path.exists(c), f'{c} left behind')


def sdmanager_deadline_wait(cond, timeout=5):
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError('condition')
        time.sleep(0.02)


if __name__ == '__main__':
    reason = sdmanager.skip_reason()
    if reason:
        print('SKIP:', reason)
        sys.exit(sdmanager.SKIP)
    unittest.main()
