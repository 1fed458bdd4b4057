#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Debian packages (debian/).

`dpkg-buildpackage -us -uc -b` on a copy of the source tree builds electiond, electionctl,
libelection1, libelection-dev and their -dbgsym packages; lintian reports no error on the .changes;
every dependency is satisfiable on this machine. The packages are then installed with dpkg into a
throwaway root (`dpkg --root`, maintainer scripts run chrootless with DPKG_ROOT set, the way
debhelper's snippets support it; the machine's own /usr, /etc and systemd are not touched): the
postinst creates the user and /etc/electiond/elections.d and enables the unit. The installed
daemon, started as the installed unit's ExecStart= says, serves on a private system-like bus that
enforces the installed bus policy; the installed electionctl reads its status as root and as
nobody. Removing keeps the daemon's state; purging removes every file and that state, leaving only
the system user (Debian keeps those).

Needs dpkg-dev, debhelper, lintian and fakeroot (tools/install-deps.sh); the install part needs root.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import electiond_test as et

SOURCE_ROOT = et.SOURCE_ROOT
PACKAGES = ['electiond', 'electionctl', 'libelection1', 'libelection-dev']
DBGSYM = ['electiond-dbgsym', 'electionctl-dbgsym', 'libelection1-dbgsym']
NODE = 'pkg-node'

# Like Debian's system.conf (deny owning and calling by default), then the installed system.d.
BUS_CONF = '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:tmpdir=/tmp</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <includedir>{system_d}</includedir>
</busconfig>
'''


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def copy_source(src, dst):
    """The tracked and untracked-but-not-ignored files (no build directories), or, outside git,
    the tree without build*/obj-*/.git."""
    r = subprocess.run(['git', '-C', src, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                       capture_output=True)
    if r.returncode == 0 and r.stdout:
        for rel in sorted(set(os.fsdecode(f) for f in r.stdout.split(b'\0') if f)):
            s = os.path.join(src, rel)
            if not os.path.lexists(s):      # deleted in the work tree
                continue
            d = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copy2(s, d, follow_symlinks=False)
    else:
        shutil.copytree(src, dst, symlinks=True,
                        ignore=shutil.ignore_patterns('build*', 'obj-*', '.git', '.bench', '__pycache__'))


def deb_field(deb, field):
    return run(['dpkg-deb', '-f', deb, field], check=True).stdout.strip()


def deb_files(deb):
    out = run(['dpkg-deb', '-c', deb], check=True).stdout
    return [line.split(None, 5)[5].split(' -> ')[0].lstrip('.') for line in out.splitlines()]


def installed_versions():
    """{package or provided name: [version or None]} of this machine's installed packages."""
    out = run(['dpkg-query', '-W', '-f', '${Package}\t${Version}\t${Provides}\t${db:Status-Abbrev}\n'],
              check=True).stdout
    have = {}
    for line in out.splitlines():
        pkg, ver, provides, status = (line.split('\t') + ['', '', ''])[:4]
        if not status.startswith('ii'):
            continue
        have.setdefault(pkg, []).append(ver)
        for p in filter(None, (x.strip() for x in provides.split(','))):
            m = re.match(r'^(\S+)(?:\s*\(=\s*([^)]+)\))?$', p)
            if m:
                have.setdefault(m.group(1).split(':')[0], []).append(m.group(2))
    return have


def satisfied(relation, have):
    """relation: 'name[:arch] [(op version)]'."""
    m = re.match(r'^([^\s(:]+)(?::\S+)?\s*(?:\((<<|<=|=|>=|>>)\s*([^)]+)\))?$', relation.strip())
    if not m:
        raise AssertionError(f'cannot parse relation {relation!r}')
    name, op, ver = m.groups()
    for v in have.get(name, []):
        if op is None:
            return True
        if v is not None and subprocess.run(['dpkg', '--compare-versions', v,
                                             {'<<': 'lt', '<=': 'le', '=': 'eq', '>=': 'ge', '>>': 'gt'}[op],
                                             ver.strip()]).returncode == 0:
            return True
    return False


class DebianPackageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        for tool in ('dpkg-buildpackage', 'dh', 'lintian', 'fakeroot'):
            if shutil.which(tool) is None:
                raise unittest.SkipTest(f'{tool} is not installed (tools/install-deps.sh installs it)')
        cls.tmp = tempfile.mkdtemp(prefix='electiond-deb-')
        os.chmod(cls.tmp, 0o755)          # nobody runs the installed electionctl from here
        cls.src = os.path.join(cls.tmp, 'src')
        copy_source(SOURCE_ROOT, cls.src)
        cls.version = run(['dpkg-parsechangelog', '-l', os.path.join(cls.src, 'debian', 'changelog'),
                           '-S', 'Version'], check=True).stdout.strip()
        cls.arch = run(['dpkg-architecture', '-qDEB_HOST_ARCH'], check=True).stdout.strip()
        # a clean environment: nothing of the meson test run leaks into the package build
        env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'HOME': cls.tmp, 'LC_ALL': 'C.UTF-8',
               'DEB_BUILD_OPTIONS': f'nocheck parallel={min(os.cpu_count() or 1, 2)}',
               'DEB_BUILD_PROFILES': 'nocheck'}
        cls.build_log = os.path.join(cls.tmp, 'build.log')
        with open(cls.build_log, 'w') as log:
            r = subprocess.run(['nice', '-n', '10', 'dpkg-buildpackage', '-us', '-uc', '-b'], cwd=cls.src,
                               env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               timeout=900)
        if r.returncode != 0:
            with open(cls.build_log) as f:
                tail = f.read()[-6000:]
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError(f'dpkg-buildpackage failed ({r.returncode}):\n{tail}')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def deb(self, pkg):
        p = os.path.join(self.tmp, f'{pkg}_{self.version}_{self.arch}.deb')
        self.assertTrue(os.path.exists(p), f'{os.path.basename(p)} was not built')
        return p

    def changes(self):
        return os.path.join(self.tmp, f'electiond_{self.version}_{self.arch}.changes')

    def test_packages_and_their_files(self):
        for pkg in PACKAGES + DBGSYM:
            self.deb(pkg)
        files = {pkg: deb_files(self.deb(pkg)) for pkg in PACKAGES}
        unit_dirs = [os.path.dirname(f) for f in files['electiond'] if f.endswith('/electiond.service')]
        self.assertEqual(len(unit_dirs), 1, files['electiond'])
        self.assertIn(unit_dirs[0], ('/lib/systemd/system', '/usr/lib/systemd/system'))
        multiarch = run(['dpkg-architecture', '-qDEB_HOST_MULTIARCH'], check=True).stdout.strip()
        expect = {
            'electiond': ['/usr/libexec/electiond', unit_dirs[0] + '/electiond-leader@.target',
                          unit_dirs[0] + '/electiond-witness@.service',
                          '/usr/lib/sysusers.d/electiond.conf', '/usr/lib/tmpfiles.d/electiond.conf',
                          '/usr/share/dbus-1/system.d/org.electiond.Election1.conf',
                          '/usr/share/dbus-1/system-services/org.electiond.Election1.service',
                          '/usr/share/dbus-1/interfaces/org.electiond.Election1.xml',
                          '/usr/share/polkit-1/actions/org.electiond.Election1.policy',
                          '/usr/share/polkit-1/rules.d/50-electiond.rules',
                          '/usr/share/man/man8/electiond.8.gz', '/usr/share/man/man5/electiond.conf.5.gz',
                          '/usr/share/locale/de/LC_MESSAGES/electiond.mo',
                          '/etc/electiond/electiond.conf.d/50-fast.conf.example'],
            'electionctl': ['/usr/bin/electionctl', '/usr/share/man/man1/electionctl.1.gz',
                            '/usr/share/bash-completion/completions/electionctl'],
            'libelection1': [f'/usr/lib/{multiarch}/libelection.so.1'],
            'libelection-dev': ['/usr/include/election-1/election.h', '/usr/include/election-1/election-glib.h',
                                f'/usr/lib/{multiarch}/libelection.so',
                                f'/usr/lib/{multiarch}/pkgconfig/libelection.pc',
                                '/usr/share/man/man3/libelection.3.gz'],
        }
        for pkg, paths in expect.items():
            for p in paths:
                self.assertIn(p, files[pkg], f'{pkg} lacks {p}')
        # the upstream version is meson's project version (the daemon reports it, see the install test)
        self.assertEqual(deb_field(self.deb('libelection-dev'), 'Depends').split(',')[0].strip(),
                         f'libelection1 (= {self.version})')

    def test_dependencies_are_satisfiable_here(self):
        have = installed_versions()
        for pkg in PACKAGES:
            have.setdefault(pkg, []).append(self.version)
        for pkg in PACKAGES:
            for field in ('Pre-Depends', 'Depends'):
                for clause in filter(None, (c.strip() for c in deb_field(self.deb(pkg), field).split(','))):
                    self.assertTrue(any(satisfied(alt, have) for alt in clause.split('|')),
                                    f'{pkg}: {field} {clause} is not satisfied on this machine')

    def test_lintian_reports_no_error(self):
        r = run(['lintian', '--pedantic', '--display-info', self.changes()], timeout=600)
        tags = [line for line in r.stdout.splitlines() if re.match(r'^[EWIPX]: ', line)]
        print('lintian:\n' + ('\n'.join(tags) or '(nothing)'), file=sys.stderr)
        errors = [t for t in tags if t.startswith('E: ')]
        self.assertEqual(errors, [], 'lintian errors')
        self.assertEqual(r.returncode, 0, 'lintian failed:\n' + r.stdout + r.stderr)

    def dpkg(self, root, *args):
        argv = ['dpkg', f'--root={root}', f'--log={root}/var/log/dpkg.log', '--force-script-chrootless',
                # the dependencies are the machine's own packages, which are not in this root's
                # database (test_dependencies_are_satisfiable_here checks them)
                '--force-depends', *args]
        if os.path.isdir('/run/systemd'):
            # the chrootless postinst/postrm ask [ -d /run/systemd/system ] of the real root: hide the
            # machine's systemd from them (private mount namespace), so that nothing reloads or starts it
            argv = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c',
                    'mount -t tmpfs tmpfs /run/systemd && exec "$@"', 'sh'] + argv
        r = run(argv, timeout=300, env=dict(os.environ, PATH='/usr/sbin:/usr/bin:/sbin:/bin'))
        self.assertEqual(r.returncode, 0, f'dpkg {" ".join(args)} failed:\n{r.stdout}{r.stderr}')
        return r

    def test_install_run_purge(self):
        if os.geteuid() != 0:
            self.skipTest('installing into a root directory needs root')
        root = os.path.join(self.tmp, 'root')
        # what a base system has; a policy-rc.d that forbids starting services (as in image builds)
        for d in ('etc/systemd/system', 'usr/sbin', 'var/lib/systemd', 'var/lib/dpkg/info',
                  'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/log'):
            os.makedirs(os.path.join(root, d), mode=0o755)
        for f in ('var/lib/dpkg/status', 'var/lib/dpkg/available'):
            open(os.path.join(root, f), 'w').close()
        policy_rc = os.path.join(root, 'usr/sbin/policy-rc.d')
        with open(policy_rc, 'w') as f:
            f.write('#!/bin/sh\nexit 101\n')
        os.chmod(policy_rc, 0o755)
        os.chmod(root, 0o755)
        before = self.tree(root)

        self.dpkg(root, '--install', *(self.deb(p) for p in PACKAGES))
        status = run(['dpkg-query', f'--admindir={root}/var/lib/dpkg', '-W', '-f',
                      '${Package} ${db:Status-Abbrev}\n'], check=True).stdout.split('\n')
        for pkg in PACKAGES:
            self.assertIn(f'{pkg} ii ', status)

        # what the postinst did: the user (sysusers), elections.d (tmpfiles), the enabled unit
        with open(os.path.join(root, 'etc/passwd')) as f:
            self.assertRegex(f.read(), r'(?m)^electiond:x:\d+:\d+:[^:]*:/var/lib/electiond:')
        self.assertTrue(os.path.isdir(os.path.join(root, 'etc/electiond/elections.d')))
        wants = os.path.join(root, 'etc/systemd/system/multi-user.target.wants/electiond.service')
        target = os.readlink(wants)
        unit = os.path.join(root, target.lstrip('/'))
        self.assertTrue(os.path.isfile(unit), f'{wants} -> {target}, which is not installed')
        # the metrics units are installed but opt-in: neither enabled nor started
        for u in ('electiond-metrics.timer', 'electiond-metrics.socket', 'electiond-metrics.service',
                  'electiond-metrics@.service'):
            self.assertTrue(os.path.isfile(os.path.join(os.path.dirname(unit), u)), f'{u} not installed')
        for wants_dir in ('timers.target.wants', 'sockets.target.wants'):
            self.assertFalse(os.path.exists(os.path.join(root, 'etc/systemd/system', wants_dir)),
                             f'{wants_dir}: a metrics unit was enabled')

        # the daemon, as the unit runs it (ExecStart=), on a bus with the installed policy
        with open(unit) as f:
            unit_text = f.read()
        exec_start = re.search(r'(?m)^ExecStart=(\S+)$', unit_text).group(1)
        self.assertEqual(re.search(r'(?m)^BusName=(\S+)$', unit_text).group(1), et.BUS_NAME)
        with open(os.path.join(root, 'usr/share/dbus-1/system-services/org.electiond.Election1.service')) as f:
            self.assertIn(f'Exec={exec_start}\n', f.read())
        exe = os.path.join(root, exec_start.lstrip('/'))
        self.assertTrue(os.access(exe, os.X_OK), exe)
        bus_conf = os.path.join(self.tmp, 'bus.conf')
        with open(bus_conf, 'w') as f:
            f.write(BUS_CONF.format(system_d=os.path.join(root, 'usr/share/dbus-1/system.d')))
        state = os.path.join(root, 'var/lib/electiond')     # StateDirectory=electiond
        os.makedirs(state, mode=0o700)
        run_dir = os.path.join(self.tmp, 'run')
        bus = et.PrivateBus(config_file=bus_conf)
        daemon = None
        try:
            daemon = et.Daemon(bus, exe=exe, state_dir=state, config_text=(
                f'[Node]\nName={NODE}\nElectionsDirectory={root}/etc/electiond/elections.d\n'
                f'RuntimeDirectory={run_dir}\n'))

            libdir = os.path.dirname(next(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, 'usr/lib'))
                                          for f in fs if f == 'libelection.so.1'))
            ctl = os.path.join(root, 'usr/bin/electionctl')
            env = {'PATH': '/usr/bin:/bin', 'LC_ALL': 'C', 'LD_LIBRARY_PATH': libdir,
                   'DBUS_SYSTEM_BUS_ADDRESS': bus.address}
            ldd = run(['ldd', ctl], env=env, check=True).stdout
            self.assertRegex(ldd, r'libelection\.so\.1 => ' + re.escape(libdir) + '/')

            r = run([ctl, '--json', 'status'], env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            st = json.loads(r.stdout)
            self.assertEqual(st['node'], NODE)
            self.assertEqual(st['version'], self.version.split('-')[0])   # meson's project version
            self.assertIs(st['quorate'], True)
            # anyone may read the status under the installed bus policy
            r = run([ctl, 'status'], env=env, user=et.NOBODY, group=et.NOBODY, extra_groups=[])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(NODE, r.stdout)
            # and only root or the electiond user may own the name
            r = run(['/usr/bin/python3', '-c', 'import sys, dbus, dbus.bus\n'
                     'c = dbus.bus.BusConnection(sys.argv[1])\n'
                     'try:\n    c.request_name("org.electiond.Election1", dbus.bus.NAME_FLAG_DO_NOT_QUEUE)\n'
                     'except dbus.exceptions.DBusException as e:\n    print(e.get_dbus_name())\n',
                     bus.address], user=et.NOBODY, group=et.NOBODY, extra_groups=[])
            self.assertEqual(r.stdout.strip(), et.ERROR_ACCESS_DENIED, r.stdout + r.stderr)

            # a persistent candidacy is state in the state directory
            r = run([ctl, '--json', 'enter', 'pkg-test', '--id', 'a', '--persistent'], env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(json.loads(r.stdout)['leader'], 'a')
            daemon.stop()
        finally:
            if daemon is not None:
                daemon.cleanup()
            bus.stop()
        self.assertTrue(os.listdir(state), 'the daemon wrote nothing to its state directory')

        # remove keeps the state (and elections.d), purge removes everything
        self.dpkg(root, '--remove', *PACKAGES)
        self.assertFalse(os.path.exists(exe))
        self.assertTrue(os.listdir(state))
        self.dpkg(root, '--purge', *PACKAGES)
        left = sorted(p for p in self.tree(root) - before
                      if not p.startswith('var/lib/dpkg/')
                      and p not in ('var/log/dpkg.log', 'etc/.pwd.lock',
                                    # Debian keeps system users on purge
                                    'etc/passwd', 'etc/group', 'etc/shadow', 'etc/gshadow'))
        self.assertEqual(left, [], 'left behind after purge')
        self.assertEqual(sorted(before - self.tree(root)), [], 'purge removed what was there before')

    @staticmethod
    def tree(root):
        out = set()
        for d, dirs, files in os.walk(root):
            for n in dirs + files:
                out.add(os.path.relpath(os.path.join(d, n), root))
        return out


if __name__ == '__main__':
    unittest.main(verbosity=2)
