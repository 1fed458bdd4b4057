#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""libelection's ABI: the exported symbols are exactly those listed in client-lib/libelection.sym
(all in version LIBELECTION_1), and every function the public headers declare is among them."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_client_common import LIBELECTION  # noqa: E402

SOURCE_ROOT = os.environ.get('ELECTIOND_SOURCE_ROOT',
                             os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYM = os.path.join(SOURCE_ROOT, 'client-lib', 'libelection.sym')
HEADER = os.path.join(SOURCE_ROOT, 'client-lib', 'include', 'election.h')


def version_script_symbols():
    text = re.sub(r'/\*.*?\*/', '', open(SYM).read(), flags=re.S)
    m = re.search(r'LIBELECTION_1\s*\{\s*global:(.*?)local:\s*\*;\s*\};', text, re.S)
    assert m, 'libelection.sym: no LIBELECTION_1 { global: ... local: *; }; block'
    return [s.strip() for s in m.group(1).split(';') if s.strip()]


def exported_symbols():
    out = subprocess.run(['nm', '-D', '--defined-only', LIBELECTION], check=True,
                         capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        name, _, version = parts[2].partition('@@')
        if parts[1] == 'A' and name == 'LIBELECTION_1':
            continue  # the version node itself
        syms[name] = version
    return syms


class SymbolsTest(unittest.TestCase):

    def test_exports_match_version_script(self):
        listed = version_script_symbols()
        self.assertEqual(len(listed), len(set(listed)), 'duplicates in libelection.sym')
        exported = exported_symbols()
        self.assertEqual(sorted(exported), sorted(listed),
                         'the exported symbols changed: update client-lib/libelection.sym on purpose '
                         '(add new ones, never remove)')
        for name, version in exported.items():
            self.assertEqual(version, 'LIBELECTION_1', name)
            self.assertTrue(name.startswith('election_'), name)

    def test_header_functions_are_exported(self):
        text = re.sub(r'/\*.*?\*/', '', open(HEADER).read(), flags=re.S)
        declared = set(re.findall(r'\b(election_[a-z0-9_]+)\s*\(', text))
        declared -= {n for n in declared if n.endswith('_t')}
        self.assertTrue(len(declared) > 40, declared)
        self.assertEqual(sorted(declared), sorted(version_script_symbols()))


if __name__ == '__main__':
    unittest.main(verbosity=2)
