# SPDX-License-Identifier: LGPL-2.1-or-later
"""A real `systemd --user` service manager per test, started safely on a shared machine.

Machine safety (the manager must never touch anything it did not start):
- Before it starts, a dedicated child cgroup is created in every cgroup hierarchy systemd uses
  (cgroup2 and the named "systemd" v1 hierarchy; on pure v2 just /sys/fs/cgroup), under the
  cgroup the test runner is in. Only the freshly forked child that will exec the manager is moved
  there (in preexec, before exec), and it checks /proc/self/cgroup and refuses to exec unless it
  really sits in all of them. Started in a root cgroup the manager would adopt every process of
  the machine, PID 1 included.
- It runs in a private mount namespace (`unshare --mount --propagation private`) with a tmpfs on
  /run/systemd holding an empty system/ dir (it refuses to start without one), the pty of
  `script -qfec` bind-mounted over /dev/console (without journald it logs there), and a
  user.conf.d drop-in that turns controller accounting off so it creates no cgroups in other
  hierarchies.
- Teardown: SIGTERM to the manager (only after checking it is in our cgroup), then SIGKILL to
  whatever is left in our child cgroups (only processes it started), then rmdir of the cgroups,
  deepest first, and of the temp dir.

XDG_RUNTIME_DIR is a temp dir; the manager's bus (dbus.socket of dbus-user-session) is
$XDG_RUNTIME_DIR/bus; test units go in $XDG_RUNTIME_DIR/systemd/user, then Reload().
"""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import dbus
import dbus.bus

SD = 'org.freedesktop.systemd1'
SD_PATH = '/org/freedesktop/systemd1'
SD_MANAGER = 'org.freedesktop.systemd1.Manager'
SD_UNIT = 'org.freedesktop.systemd1.Unit'
SD_SERVICE = 'org.freedesktop.systemd1.Service'
PROPS = 'org.freedesktop.DBus.Properties'

SYSTEMD = next((p for p in ('/lib/systemd/systemd', '/usr/lib/systemd/systemd') if os.path.exists(p)),
               '/lib/systemd/systemd')

SKIP = 77

MANAGER_CONF = """[Manager]
DefaultCPUAccounting=no
DefaultIOAccounting=no
DefaultBlockIOAccounting=no
DefaultMemoryAccounting=no
DefaultTasksAccounting=no
DefaultIPAccounting=no
DefaultTimeoutStopSec=5s
"""

# The default target of the test manager: only the bus socket, nothing else of the user session.
TEST_TARGET = """[Unit]
Description=electiond test manager
Wants=dbus.socket
"""

INNER = r'''set -e
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir -p /run/systemd/system /run/systemd/user.conf.d
cp "$XDG_RUNTIME_DIR/manager.conf" /run/systemd/user.conf.d/50-electiond-test.conf
# What PID 1 normally provides for sandboxing (ProtectHome=, InaccessiblePaths=).
mkdir -p -m 0755 /run/systemd/inaccessible
mkdir -m 0000 /run/systemd/inaccessible/dir
install -m 0000 /dev/null /run/systemd/inaccessible/reg
mkfifo -m 0000 /run/systemd/inaccessible/fifo
mknod -m 0000 /run/systemd/inaccessible/chr c 0 0
mknod -m 0000 /run/systemd/inaccessible/blk b 0 0
mount --bind "$(tty)" /dev/console
echo $$ > "$XDG_RUNTIME_DIR/manager.pid"
exec "$ELECTIOND_TEST_SYSTEMD" --user --unit=electiond-test.target --default-standard-output=inherit \
     --log-level=info --log-target=console
'''


_live = set()   # managers not yet stopped: torn down at exit and on SIGTERM/SIGINT too


def _stop_all():
    for m in list(_live):
        try:
            m.stop()
        except Exception as e:  # keep going: every manager must go
            print(f'sdmanager: teardown of {m.tag} failed: {e}', file=sys.stderr)


def _on_signal(signum, frame):
    _stop_all()
    sys.exit(128 + signum)


atexit.register(_stop_all)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    if signal.getsignal(_sig) in (signal.SIG_DFL, signal.default_int_handler):
        signal.signal(_sig, _on_signal)


def cgroup_hierarchies():
    """[(mount point, key in /proc/self/cgroup)] of the hierarchies systemd uses here."""
    v2, named = None, None
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            sep = fields.index('-')
            mnt, fstype, opts = fields[4], fields[sep + 1], fields[sep + 3]
            if fstype == 'cgroup2':
                v2 = mnt
            elif fstype == 'cgroup' and 'name=systemd' in opts.split(','):
                named = mnt
    out = []
    if v2:
        out.append((v2, '0:'))
    if named:
        out.append((named, 'name=systemd'))
    return out


def own_cgroup(key):
    """The test runner's cgroup path in one hierarchy (key '0:' for cgroup2, 'name=systemd')."""
    with open('/proc/self/cgroup') as f:
        for line in f:
            hid, ctrls, path = line.rstrip('\n').split(':', 2)
            if (key == '0:' and hid == '0' and ctrls == '') or (key != '0:' and key in ctrls.split(',')):
                return path
    raise RuntimeError(f'not in a {key} cgroup')


def skip_reason():
    if os.geteuid() != 0:
        return 'needs root (cgroups, mount namespace)'
    if not os.path.exists(SYSTEMD):
        return 'no systemd binary'
    for tool in ('unshare', 'script', 'busctl'):
        if not shutil.which(tool):
            return f'{tool} not installed'
    if not os.path.exists('/usr/lib/systemd/user/dbus.socket') and not os.path.exists('/lib/systemd/user/dbus.socket'):
        return 'dbus-user-session (user dbus.socket) not installed'
    hs = cgroup_hierarchies()
    if not hs:
        return 'no cgroup hierarchy mounted'
    for mnt, _ in hs:
        if not os.access(mnt, os.W_OK):
            return f'{mnt} not writable'
    return None


def _procs_under(dirpath):
    pids = set()
    for root, _dirs, files in os.walk(dirpath):
        if 'cgroup.procs' in files:
            try:
                with open(os.path.join(root, 'cgroup.procs')) as f:
                    pids.update(int(x) for x in f.read().split())
            except (FileNotFoundError, ProcessLookupError, OSError):
                pass
    return pids


class UserManager:
    """One real `systemd --user` in its own cgroups and mount namespace. Use as a context manager
    or call start()/stop(). Duck-types tests/lib's PrivateBus (address, connect(), conn,
    name_owner(), owner_pid()) so electiond_test.Daemon/Client work on its bus."""

    _counter = 0

    def __init__(self):
        UserManager._counter += 1
        self.tag = f'electiond-test-{os.getpid()}-{UserManager._counter}'
        self.dir = tempfile.mkdtemp(prefix='electiond-sd-')
        os.chmod(self.dir, 0o755)
        self.unit_dir = os.path.join(self.dir, 'systemd', 'user')
        os.makedirs(self.unit_dir)
        self.socket = os.path.join(self.dir, 'bus')
        self.address = f'unix:path={self.socket}'
        self.cgroups = []          # [(hierarchy mount, our child dir, key)]
        self.proc = None
        self.manager_pid = None
        self._conn = None
        self.log_path = os.path.join(self.dir, 'manager.log')

    # -- lifecycle --

    def _make_cgroups(self):
        for mnt, key in cgroup_hierarchies():
            parent = own_cgroup(key)
            path = os.path.join(mnt, parent.lstrip('/'), self.tag)
            os.mkdir(path)
            self.cgroups.append((mnt, path, key))

    def _enter_cgroups(self):
        """preexec_fn: runs in the fresh child only. Moves that child, then verifies."""
        pid = str(os.getpid())
        for mnt, path, _key in self.cgroups:
            with open(os.path.join(path, 'cgroup.procs'), 'w') as f:
                f.write(pid)
        for mnt, path, key in self.cgroups:
            want = '/' + os.path.relpath(path, mnt)
            if own_cgroup(key) != want:
                os._exit(99)  # never exec the manager outside its own cgroup

    def start(self, timeout=10):
        _live.add(self)
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        with open(os.path.join(self.dir, 'manager.conf'), 'w') as f:
            f.write(MANAGER_CONF)
        with open(os.path.join(self.unit_dir, 'electiond-test.target'), 'w') as f:
            f.write(TEST_TARGET)
        self._make_cgroups()
        env = dict(os.environ, XDG_RUNTIME_DIR=self.dir, HOME=self.dir,
                   XDG_CONFIG_HOME=os.path.join(self.dir, 'config'),
                   XDG_DATA_HOME=os.path.join(self.dir, 'data'),
                   ELECTIOND_TEST_SYSTEMD=SYSTEMD)
        for k in ('DBUS_SESSION_BUS_ADDRESS', 'DBUS_SYSTEM_BUS_ADDRESS', 'NOTIFY_SOCKET', 'LISTEN_FDS',
                  'LISTEN_PID', 'INVOCATION_ID', 'MANAGERPID'):
            env.pop(k, None)
        self.log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(
            ['unshare', '--mount', '--propagation', 'private', '--',
             'script', '-qfec', INNER, '/dev/null'],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=self._enter_cgroups, start_new_session=True)
        deadline = time.monotonic() + timeout
        pidfile = os.path.join(self.dir, 'manager.pid')
        while True:
            if self.manager_pid is None and os.path.exists(pidfile):
                with open(pidfile) as f:
                    s = f.read().strip()
                if s:
                    self.manager_pid = int(s)
            if os.path.exists(self.socket) and self._bus_ready():
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = self.read_log()
                raise RuntimeError(f'systemd --user did not come up (rc {self.proc.returncode}):\n{out[-4000:]}')
            time.sleep(0.02)

    def _bus_ready(self):
        try:
            state = self.manager_get('SystemState')
        except dbus.exceptions.DBusException:
            return False
        return str(state) in ('running', 'degraded')

    def in_our_cgroup(self, pid):
        try:
            with open(f'/proc/{pid}/cgroup') as f:
                text = f.read()
        except OSError:
            return False
        for mnt, path, key in self.cgroups:
            rel = '/' + os.path.relpath(path, mnt)
            for line in text.splitlines():
                hid, ctrls, p = line.split(':', 2)
                mine = (key == '0:' and hid == '0') or (key != '0:' and key in ctrls.split(','))
                if mine and (p == rel or p.startswith(rel + '/')):
                    return True
        return False

    def leftover_pids(self):
        pids = set()
        for _mnt, path, _key in self.cgroups:
            if os.path.isdir(path):
                pids |= _procs_under(path)
        return pids

    def stop(self, timeout=5):
        _live.discard(self)
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        try:
            if self.manager_pid and self.in_our_cgroup(self.manager_pid):
                try:
                    os.kill(self.manager_pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            # Only processes in our child cgroups: all of them were started by this manager.
            deadline = time.monotonic() + timeout
            while True:
                left = self.leftover_pids()
                if not left:
                    break
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f'processes left in {self.tag}: {sorted(left)}')
                time.sleep(0.02)
            if self.proc is not None and self.proc.poll() is None:
                self.proc.wait(timeout=timeout)
        finally:
            self._remove_cgroups()
            if getattr(self, 'log', None):
                self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _remove_cgroups(self):
        for _mnt, path, _key in self.cgroups:
            if not os.path.isdir(path):
                continue
            deadline = time.monotonic() + 5
            for root, _dirs, _files in os.walk(path, topdown=False):  # deepest first
                while True:
                    try:
                        os.rmdir(root)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.02)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def read_log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode(errors='replace')
        except OSError:
            return ''

    # -- PrivateBus duck typing --

    def connect(self):
        return dbus.bus.BusConnection(self.address)

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def name_owner(self, name):
        try:
            return str(self.conn.get_name_owner(name))
        except dbus.exceptions.DBusException:
            return None

    def owner_pid(self, name='org.electiond.Election1'):
        owner = self.name_owner(name)
        if owner is None:
            return None
        try:
            return int(self.conn.call_blocking('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                               'org.freedesktop.DBus', 'GetConnectionUnixProcessID',
                                               's', (owner,)))
        except dbus.exceptions.DBusException:
            return None

    # -- service manager --

    def call(self, method, signature='', args=(), path=SD_PATH, iface=SD_MANAGER):
        return self.conn.call_blocking(SD, path, iface, method, signature, args, timeout=10)

    def manager_get(self, prop):
        return self.call('Get', 'ss', (SD_MANAGER, prop), iface=PROPS)

    def add_unit(self, name, text):
        with open(os.path.join(self.unit_dir, name), 'w') as f:
            f.write(text)

    def add_dropin(self, name, conf, text):
        d = os.path.join(self.unit_dir, name + '.d')
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, conf), 'w') as f:
            f.write(text)

    def reload(self):
        self.call('Reload')

    def unit_path(self, name):
        return str(self.call('LoadUnit', 's', (name,)))   # LoadUnit, not GetUnit: works when stopped

    def unit_prop(self, name, prop, iface=SD_UNIT):
        return self.call('Get', 'ss', (iface, prop), path=self.unit_path(name), iface=PROPS)

    def active_state(self, name):
        return str(self.unit_prop(name, 'ActiveState'))

    def main_pid(self, name):
        return int(self.unit_prop(name, 'MainPID', iface=SD_SERVICE))

    def start_unit(self, name, mode='replace'):
        return str(self.call('StartUnit', 'ss', (name, mode)))

    def stop_unit(self, name, mode='replace'):
        return str(self.call('StopUnit', 'ss', (name, mode)))

    def wait_job(self, job, timeout=10):
        """Until the job object is gone (the job finished, whatever its result)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call('Get', 'ss', ('org.freedesktop.systemd1.Job', 'State'), path=job, iface=PROPS)
            except dbus.exceptions.DBusException:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f'job {job} still there after {timeout}s')
            time.sleep(0.02)

    def reset_failed(self, name):
        self.call('ResetFailedUnit', 's', (name,))

    def wait_state(self, name, states, timeout=10):
        if isinstance(states, str):
            states = (states,)
        deadline = time.monotonic() + timeout
        while True:
            s = self.active_state(name)
            if s in states:
                return s
            if time.monotonic() > deadline:
                raise TimeoutError(f'{name} is {s}, wanted {states} within {timeout}s')
            time.sleep(0.02)
