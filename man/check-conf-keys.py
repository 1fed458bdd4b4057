#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The configuration pages document exactly the keys the parsers take, and the daemon accepts the
documented keys with their documented defaults.

- electiond.conf(5): the keys under ".SH [Group] SECTION" == the config_keys table of
  daemon/electiond-config.c, group by group;
- electiond.elections.d(5): the keys under ".SH FORMAT" == the keys electiond-elections-d.c takes;
- the real daemon, given every documented electiond.conf key (numeric defaults as documented),
  warns about none of them and gets past the configuration: it stops only because the bus it is
  pointed at does not exist (so it never reaches the cluster code and sends nothing)."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

SOURCE_ROOT = os.environ.get('ELECTIOND_SOURCE_ROOT',
                             os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ELECTIOND = os.environ.get('ELECTIOND')


def read(*path):
    with open(os.path.join(SOURCE_ROOT, *path), encoding='utf-8') as f:
        return f.read()


def page_keys(text, section_re):
    """{section: {key: documented default or None}} for ".BI Key= ARG" entries under matching .SH."""
    out, section, key = {}, None, None
    for line in text.splitlines():
        if line.startswith('.SH '):
            m = re.fullmatch(section_re, line[4:].strip())
            section = m.group(1) if m else None
            key = None
            if section is not None:
                out.setdefault(section, {})
            continue
        if section is None:
            continue
        m = re.match(r'\.BI (\w+)= ', line)
        if m:
            key = m.group(1)
            out[section][key] = None
            continue
        m = re.match(r'Default: (\d+(?:\.\d+)?)\.?$', line)
        if m and key:
            out[section][key] = m.group(1)
    return out


class Keys(unittest.TestCase):

    def test_conf_page_matches_parser(self):
        table = re.findall(r'\{\s*"(\w+)",\s*"(\w+)",\s*KIND_\w+', read('daemon', 'electiond-config.c'))
        self.assertGreater(len(table), 10, 'config key table not found')
        code = {}
        for group, key in table:
            code.setdefault(group, set()).add(key)
        doc = page_keys(read('man', 'electiond.conf.5'), r'\[(\w+)\] SECTION')
        self.assertEqual({g: set(k) for g, k in doc.items()}, code)

    def test_conf_page_says_what_reload_applies(self):
        """Every key's entry says "Reload: applied." exactly when the parser's table has no .fixed reason."""
        src = read('daemon', 'electiond-config.c')
        table = re.findall(r'\{\s*"(\w+)",\s*"(\w+)",\s*KIND_\w+[^\n]*', src)
        rows = re.findall(r'\{\s*"(\w+)",\s*"(\w+)",\s*KIND_\w+([^\n]*)', src)
        self.assertEqual(len(rows), len(table))
        fixed = {(g, k): '.fixed' in rest for g, k, rest in rows}
        text = read('man', 'electiond.conf.5')
        section, key, said = None, None, {}
        for line in text.splitlines():
            if line.startswith('.SH '):
                m = re.fullmatch(r'\[(\w+)\] SECTION', line[4:].strip())
                section = m.group(1) if m else None
                continue
            m = re.match(r'\.BI (\w+)= ', line)
            if m and section:
                key = m.group(1)
                continue
            if line.startswith('Reload: ') and section and key:
                said[(section, key)] = line
        self.assertEqual(set(said), set(fixed))
        for gk, is_fixed in fixed.items():
            self.assertEqual(said[gk].startswith('Reload: refused'), is_fixed, (gk, said[gk]))
            self.assertEqual(said[gk] == 'Reload: applied.', not is_fixed, (gk, said[gk]))

    def test_elections_d_page_matches_parser(self):
        src = read('daemon', 'electiond-elections-d.c')
        code = set(re.findall(r'g_str_equal\(\*k, "(\w+)"\)', src))
        self.assertEqual(code, {'Id', 'Units', 'HealthUnit'})
        doc = page_keys(read('man', 'electiond.elections.d.5'), r'(FORMAT)')
        self.assertEqual(set(doc['FORMAT']), code)


# Values for keys whose page gives no numeric default.
SAMPLES = {
    ('Node', 'Name'): 'docs-node',
    ('Cluster', 'Name'): 'docs-cluster',
    ('Cluster', 'Interfaces'): 'lo',
    ('Cluster', 'Peers'): '127.0.0.1:7000, 127.0.0.2, [::1]:7000, ::1, [fe80::1%lo]:7000',
    ('Cluster', 'AddressFamily'): 'any',
    ('Cluster', 'PrimaryKey'): 'docs.key',
    ('Node', 'Witness'): 'no',  # a boolean: documented as "Default: no."
    ('Cluster', 'Encrypt'): 'yes',  # a boolean too; the non-default value, to parse it
}


@unittest.skipUnless(ELECTIOND, 'ELECTIOND not set')
class Daemon(unittest.TestCase):

    def test_documented_keys_and_defaults_are_accepted(self):
        doc = page_keys(read('man', 'electiond.conf.5'), r'\[(\w+)\] SECTION')
        with tempfile.TemporaryDirectory(prefix='electiond-docs-') as tmp:
            lines = []
            for group, keys in sorted(doc.items()):
                lines.append(f'[{group}]')
                for key, default in sorted(keys.items()):
                    if (group, key) in SAMPLES:
                        value = SAMPLES[(group, key)]
                    elif key.endswith(('Directory', 'File')):
                        value = os.path.join(tmp, key)
                    else:
                        self.assertIsNotNone(default, f'[{group}] {key}= documents no numeric default')
                        value = default
                    lines.append(f'{key}={value}')
            conf = os.path.join(tmp, 'electiond.conf')
            with open(conf, 'w') as f:
                f.write('\n'.join(lines) + '\n')
            env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS='unix:path=' + os.path.join(tmp, 'no-bus'), LC_ALL='C')
            r = subprocess.run([ELECTIOND, '--config=' + conf, '--state-dir=' + os.path.join(tmp, 'state')],
                               env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertNotIn('unknown', r.stderr.lower(), r.stderr)
        self.assertIn('Failed to connect to the system bus', r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2, argv=sys.argv[:1])
