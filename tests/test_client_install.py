#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The installed client side: headers in election-1/, a pkg-config file that builds the example,
the library, electionctl, its bash completion, man pages and the German catalogue."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_client_common import BUILD_ROOT  # noqa: E402

SOURCE_ROOT = os.environ.get('ELECTIOND_SOURCE_ROOT',
                             os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find(root, suffix):
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if p.endswith(suffix):
                return p
    return None


class InstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.destdir = tempfile.mkdtemp(prefix='electiond-install-')
        r = subprocess.run(['meson', 'install', '-C', BUILD_ROOT, '--no-rebuild', '--quiet',
                            '--destdir', cls.destdir], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError('meson install failed:\n' + r.stdout + r.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.destdir, ignore_errors=True)

    def installed(self, suffix):
        p = find(self.destdir, suffix)
        self.assertIsNotNone(p, f'{suffix} is not installed')
        return p

    def test_files(self):
        self.installed('/include/election-1/election.h')
        self.installed('/include/election-1/election-glib.h')
        self.installed('/libelection.so.1')
        self.installed('/bin/electionctl')
        self.installed('/share/bash-completion/completions/electionctl')
        self.installed('/man1/electionctl.1')
        self.installed('/man3/libelection.3')
        self.installed('/de/LC_MESSAGES/electiond.mo')

    def test_pkgconfig_builds_the_example(self):
        pc = self.installed('/pkgconfig/libelection.pc')
        text = open(pc).read()
        self.assertIn('-I${includedir}/election-1', text)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc), PKG_CONFIG_SYSROOT_DIR=self.destdir)
        flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'libelection'], env=env, check=True,
                               capture_output=True, text=True).stdout.split()
        self.assertIn('-lelection', flags)
        out = os.path.join(self.destdir, 'campaign')
        r = subprocess.run(['cc', '-Wall', '-Werror', os.path.join(SOURCE_ROOT, 'client-lib', 'examples',
                                                                   'campaign.c'), '-o', out] + flags,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_glib_header_alone(self):
        """<election-glib.h> compiles cleanly in a program that does not use it."""
        pc = self.installed('/pkgconfig/libelection.pc')
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc), PKG_CONFIG_SYSROOT_DIR=self.destdir)
        flags = subprocess.run(['pkg-config', '--cflags', 'libelection'], env=env, check=True,
                               capture_output=True, text=True).stdout.split()
        flags += subprocess.run(['pkg-config', '--cflags', 'glib-2.0'], check=True,
                                capture_output=True, text=True).stdout.split()
        src = os.path.join(self.destdir, 'glib-alone.c')
        with open(src, 'w') as f:
            f.write('#include <election.h>\n#include <election-glib.h>\nint main(void) { return 0; }\n')
        r = subprocess.run(['cc', '-Wall', '-Wextra', '-Werror', '-c', src, '-o', src + '.o'] + flags,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bash_completion(self):
        comp = self.installed('/share/bash-completion/completions/electionctl')
        script = (f'source {comp}; COMP_WORDS=(electionctl an); COMP_CWORD=1; _electionctl; '
                  'echo "${COMPREPLY[*]}"; COMP_WORDS=(electionctl --js); COMP_CWORD=1; _electionctl; '
                  'echo "${COMPREPLY[*]}"; complete -p electionctl')
        r = subprocess.run(['bash', '-c', script], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], 'anoint')
        self.assertEqual(lines[1], '--json')
        self.assertIn('-F _electionctl', lines[2])


if __name__ == '__main__':
    unittest.main(verbosity=2)
