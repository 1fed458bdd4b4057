#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The harness itself can fail: a stand-in daemon that reports a sanitizer error, exits non-zero,
or dies, must make Daemon.stop()/tearDown fail. (The real suite relies on these checks.)"""

import os
import stat
import tempfile
import textwrap
import unittest

import electiond_test as et

# the stand-in is a Python script: never run it under valgrind
os.environ.pop('ELECTIOND_WRAPPER', None)

FAKE = textwrap.dedent('''\
    #!/usr/bin/python3
    import os, signal, sys
    import dbus, dbus.bus, dbus.mainloop.glib
    from gi.repository import GLib
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    conn = dbus.bus.BusConnection(os.environ['DBUS_SYSTEM_BUS_ADDRESS'])
    loop = GLib.MainLoop()
    def term():
        mode = os.environ.get('FAKE_MODE', '')
        if mode == 'asan':
            sys.stderr.write('==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\\n')
        elif mode == 'ubsan':
            sys.stderr.write('x.c:1:2: runtime error: signed integer overflow\\n')
        elif mode == 'lsan':
            sys.stderr.write('==1==ERROR: LeakSanitizer: detected memory leaks\\n')
        sys.stderr.flush()
        os._exit(3 if mode == 'exit3' else 0)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, term)
    conn.request_name('org.electiond.Election1')  # after the handler: owning the name means ready
    loop.run()
''')


class Harness(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix='electiond-harness-')
        cls.fake = os.path.join(cls.tmp.name, 'fake-electiond')
        with open(cls.fake, 'w') as f:
            f.write(FAKE)
        os.chmod(cls.fake, stat.S_IRWXU)
        cls.bus = et.PrivateBus()

    @classmethod
    def tearDownClass(cls):
        cls.bus.stop()
        cls.tmp.cleanup()

    def daemon(self, mode):
        return et.Daemon(self.bus, exe=self.fake, env={'FAKE_MODE': mode})

    def test_clean_exit_passes(self):
        d = self.daemon('')
        self.assertEqual(self.bus.owner_pid(), d.pid)
        d.stop()
        d.cleanup()

    def test_failures_are_caught(self):
        for mode in ('asan', 'ubsan', 'lsan', 'exit3'):
            with self.subTest(mode=mode):
                d = self.daemon(mode)
                with self.assertRaises(AssertionError):
                    d.stop()
                d.cleanup()

    def test_dead_daemon_is_caught(self):
        d = self.daemon('')
        d.proc.kill()
        d.proc.wait()
        with self.assertRaises(AssertionError):
            d.stop()
        d.cleanup()

    def test_wait_until_deadline(self):
        with self.assertRaises(TimeoutError):
            et.wait_until(lambda: False, 0.05, 'nothing')
        self.assertEqual(et.wait_until(lambda: 7, 1), 7)

    def test_valgrind_wrapper_gets_suppressions(self):
        old = os.environ.get('ELECTIOND_WRAPPER')
        try:
            os.environ['ELECTIOND_WRAPPER'] = 'valgrind --error-exitcode=99'
            self.assertEqual(et.wrapper_argv(), ['valgrind', '--suppressions=' + et.VALGRIND_SUPP,
                                                 '--error-exitcode=99'])
            self.assertTrue(os.path.exists(et.VALGRIND_SUPP))
        finally:
            if old is None:
                os.environ.pop('ELECTIOND_WRAPPER', None)
            else:
                os.environ['ELECTIOND_WRAPPER'] = old


if __name__ == '__main__':
    unittest.main(verbosity=2)
