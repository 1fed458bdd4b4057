#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""po/de.po: valid (format strings match, nothing fuzzy or untranslated) and covering every
message of electionctl. (Daemon messages are updated with `ninja electiond-update-po`.)"""

import os
import subprocess
import tempfile
import unittest

SOURCE_ROOT = os.environ.get('ELECTIOND_SOURCE_ROOT',
                             os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DE_PO = os.path.join(SOURCE_ROOT, 'po', 'de.po')
CLIENT_SOURCES = ['client-lib/electionctl.c']


def extract(sources, out):
    # the keywords of meson's glib preset that our sources use
    subprocess.run(['xgettext', '--from-code=UTF-8', '--keyword=_', '--keyword=N_', '--add-comments',
                    '--directory', SOURCE_ROOT, '-o', out] + sources, check=True, capture_output=True)


class PoTest(unittest.TestCase):

    def test_catalogue_is_valid(self):
        r = subprocess.run(['msgfmt', '--check', '--statistics', '-o', '/dev/null', DE_PO],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('untranslated', r.stderr)
        self.assertNotIn('fuzzy', r.stderr)

    def test_client_messages_translated(self):
        with tempfile.TemporaryDirectory() as d:
            pot = os.path.join(d, 'client.pot')
            extract(CLIENT_SOURCES, pot)
            # msgcmp fails for every msgid of the template that de.po lacks or leaves untranslated
            r = subprocess.run(['msgcmp', DE_PO, pot], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_listed_in_linguas_and_potfiles(self):
        with open(os.path.join(SOURCE_ROOT, 'po', 'LINGUAS')) as f:
            self.assertIn('de', f.read().split())
        with open(os.path.join(SOURCE_ROOT, 'po', 'POTFILES.in')) as f:
            listed = f.read().split()
        for src in CLIENT_SOURCES:
            self.assertIn(src, listed)


if __name__ == '__main__':
    unittest.main(verbosity=2)
