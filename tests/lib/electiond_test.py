# SPDX-License-Identifier: LGPL-2.1-or-later
"""Test harness for electiond's D-Bus integration tests.

Runs under Debian's /usr/bin/python3 (python3-dbus, python3-gi). Gives a private system-like
dbus-daemon, the real electiond on it, proxies for the API, a signal recorder, and client
processes that can run as another uid and be killed.

Environment: ELECTIOND (the daemon binary, set by meson), ELECTIOND_WRAPPER (e.g. "valgrind
--error-exitcode=99 --leak-check=full"; tests/data/valgrind.supp is added unless the wrapper names
its own suppressions), ELECTIOND_TIMEOUT_SCALE (multiplies every deadline; defaults to 10 under
valgrind). Under ASan/UBSan builds, Daemon.stop() fails on any sanitizer report in the output.

Running this file as `python3 electiond_test.py client ADDRESS` turns it into a line-based
client (one JSON request per stdin line, one JSON answer per stdout line), used by ClientProcess.
"""

import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import dbus
import dbus.bus
import dbus.lowlevel
import dbus.mainloop.glib
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)

BUS_NAME = 'org.electiond.Election1'
MANAGER_PATH = '/org/electiond/Election1'
ELECTION_PREFIX = '/org/electiond/Election1/election'
MANAGER_IFACE = 'org.electiond.Election1.Manager'
ELECTION_IFACE = 'org.electiond.Election1.Election'
PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties'
OBJECT_MANAGER_IFACE = 'org.freedesktop.DBus.ObjectManager'
POLKIT_ACTION = 'org.electiond.Election1.manage'

ERROR_NOT_CANDIDATE = 'org.electiond.Election1.Error.NotCandidate'
ERROR_INVALID_NAME = 'org.electiond.Election1.Error.InvalidName'
ERROR_INVALID_ID = 'org.electiond.Election1.Error.InvalidId'
ERROR_LIMIT_EXCEEDED = 'org.electiond.Election1.Error.LimitExceeded'
ERROR_NO_QUORUM = 'org.electiond.Election1.Error.NoQuorum'
ERROR_ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied'
ERROR_INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs'

NOBODY = 65534

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get('ELECTIOND_SOURCE_ROOT', os.path.dirname(os.path.dirname(HERE)))
TEST_BUS_CONF = os.path.join(SOURCE_ROOT, 'tests', 'data', 'test-bus.conf')
VALGRIND_SUPP = os.path.join(SOURCE_ROOT, 'tests', 'data', 'valgrind.supp')

SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer',
                     'ERROR: UndefinedBehaviorSanitizer')


def wrapper_argv():
    argv = shlex.split(os.environ.get('ELECTIOND_WRAPPER', ''))
    # known libraft-internal reports (see the file) must not fail every test
    if argv and os.path.basename(argv[0]) == 'valgrind' and \
            not any(a.startswith('--suppressions=') for a in argv):
        argv.insert(1, '--suppressions=' + VALGRIND_SUPP)
    return argv


def timeout_scale():
    s = os.environ.get('ELECTIOND_TIMEOUT_SCALE')
    if s:
        return float(s)
    return 10.0 if any('valgrind' in a for a in wrapper_argv()) else 1.0


def T(seconds):
    """A deadline in seconds, stretched under slow wrappers."""
    return seconds * timeout_scale()


def pump(max_iterations=1000):
    """Dispatch whatever the GLib main context has ready (D-Bus signals, async replies)."""
    ctx = GLib.MainContext.default()
    n = 0
    while n < max_iterations and ctx.iteration(False):
        n += 1
    return n


def wait_until(cond, timeout=10.0, what='condition', interval=0.005):
    """Pump the main context until cond() is truthy; returns its value or raises on the deadline."""
    deadline = time.monotonic() + T(timeout)
    while True:
        pump()
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {T(timeout):.1f}s waiting for {what}')
        time.sleep(interval)


def path_encode(prefix, name):
    """sd_bus_path_encode(): every byte but [A-Za-z0-9] becomes _xx; "" becomes "_"."""
    if name == '':
        return prefix + '/_'
    out = []
    for b in name.encode('utf-8'):
        c = chr(b)
        if c.isascii() and c.isalnum():
            out.append(c)
        else:
            out.append('_%02x' % b)
    return prefix + '/' + ''.join(out)


def election_path(name):
    return path_encode(ELECTION_PREFIX, name)


def term_tuple(v):
    """(t, s, as) from a D-Bus reply/signal into plain (int, str, [str])."""
    return (int(v[0]), str(v[1]), [str(c) for c in v[2]])


def check_sanitizer_output(text, who='electiond'):
    for m in SANITIZER_MARKERS:
        if m in text:
            raise AssertionError(f'{who}: sanitizer report ({m!r}) in its output:\n{text[-8000:]}')


def error_name(exc):
    return exc.get_dbus_name() if isinstance(exc, dbus.exceptions.DBusException) else None


class PrivateBus:
    """A private dbus-daemon with a system-like configuration; its socket sits in a 0755 temp
    dir so that unprivileged client processes can reach it."""

    def __init__(self, config_file=TEST_BUS_CONF):
        self.dir = tempfile.mkdtemp(prefix='electiond-bus-')
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, 'bus')
        r, w = os.pipe()
        self.log = open(os.path.join(self.dir, 'dbus-daemon.log'), 'w+')
        self.proc = subprocess.Popen(
            ['dbus-daemon', '--nofork', f'--print-address={w}', f'--config-file={config_file}',
             f'--address=unix:path={self.socket}'],
            pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        os.close(w)
        try:
            self.address = self._read_address(r)
        finally:
            os.close(r)
        self._conn = None

    def _read_address(self, fd):
        deadline = time.monotonic() + T(10)
        buf = b''
        while b'\n' not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError('dbus-daemon did not start: ' + self.read_log())
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue
                buf += chunk
        return buf.decode().strip()

    def read_log(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def connect(self):
        """A new private connection to this bus (with the GLib main loop)."""
        return dbus.bus.BusConnection(self.address)

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def name_owner(self, name=BUS_NAME):
        try:
            return str(self.conn.get_name_owner(name))
        except dbus.exceptions.DBusException:
            return None

    def owner_pid(self, name=BUS_NAME):
        owner = self.name_owner(name)
        if owner is None:
            return None
        try:
            return int(self.conn.call_blocking('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                               'org.freedesktop.DBus', 'GetConnectionUnixProcessID',
                                               's', (owner,)))
        except dbus.exceptions.DBusException:
            return None

    def stop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=T(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    """The real electiond on a PrivateBus, with a temp state dir and config."""

    def __init__(self, bus, node_name='test-node', config_extra='', state_dir=None,
                 config_text=None, start=True, exe=None, env=None, args=()):
        self.bus = bus
        self.extra_args = list(args)
        self.exe = exe or os.environ.get('ELECTIOND')
        self.extra_env = env or {}
        self.node_name = node_name
        self.tmp = tempfile.mkdtemp(prefix='electiond-test-')
        self.state_dir = state_dir or os.path.join(self.tmp, 'state')
        os.makedirs(self.state_dir, exist_ok=True)
        self.config_path = os.path.join(self.tmp, 'electiond.conf')
        if config_text is None:
            config_text = f'[Node]\nName={node_name}\n{config_extra}'
        with open(self.config_path, 'w') as f:
            f.write(config_text)
        self.proc = None
        self.starts = 0
        self.outputs = []   # captured output of every finished run
        self.exec_time = None
        self.owned_time = None
        # the pid the bus sees on the daemon's connection (another one when it connects
        # through a proxy); None: the daemon's own
        self.connection_pid = None
        if start:
            self.start()

    def argv(self):
        if not self.exe:
            raise RuntimeError('ELECTIOND is not set (run through meson test)')
        return wrapper_argv() + [self.exe, '--config', self.config_path, '--state-dir', self.state_dir,
                                 *self.extra_args]

    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None, 'daemon already running'
        self.starts += 1
        self.log_path = os.path.join(self.tmp, f'output.{self.starts}')
        self.log = open(self.log_path, 'w')
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address)
        env.update(self.extra_env)
        env.setdefault('ASAN_OPTIONS', 'detect_leaks=1')
        env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1')
        self.exec_time = time.monotonic()
        self.proc = subprocess.Popen(self.argv(), env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self.proc.poll() is not None or self.bus.owner_pid() == (self.connection_pid or self.proc.pid),
                       timeout, 'electiond to own ' + BUS_NAME, interval=0.001)
        except TimeoutError:
            self.kill()
            raise
        self.owned_time = time.monotonic()
        if self.proc.poll() is not None:
            out = self._collect()
            raise RuntimeError(f'electiond exited with {self.proc.returncode} before owning the name:\n{out}')

    @property
    def pid(self):
        return self.proc.pid

    def _collect(self):
        self.log.close()
        with open(self.log_path, errors='replace') as f:
            out = f.read()
        self.outputs.append(out)
        return out

    def output(self):
        """Output of the current run so far."""
        self.log.flush()
        with open(self.log_path, errors='replace') as f:
            return f.read()

    def stop(self, timeout=10):
        """SIGTERM; asserts a clean exit (0) and no sanitizer report. Returns the output."""
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError('electiond is not running (it died?): ' +
                                 (self._collect() if self.proc else ''))
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=T(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError('electiond did not exit on SIGTERM:\n' + self._collect())
        out = self._collect()
        check_sanitizer_output(out)
        if rc != 0:
            raise AssertionError(f'electiond exited with {rc} on SIGTERM:\n{out[-8000:]}')
        return out

    def kill(self, sig=signal.SIGKILL):
        """Sends sig and reaps; no assertions on the exit status (sanitizer output is still checked)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=T(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out = self._collect()
        check_sanitizer_output(out)

    def restart(self, hard=False):
        if hard:
            self.kill(signal.SIGKILL)
        else:
            self.stop()
        self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        """For tearDown paths: stop if still running (asserting as stop() does), remove temp files."""
        try:
            if self.running():
                self.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Election:
    """Proxy for one election object. Calls go to the well-known name, so a proxy keeps working
    across daemon restarts."""

    def __init__(self, client, name, path=None):
        self.client = client
        self.conn = client.conn
        self.name = name
        self.path = str(path) if path is not None else client.get_election(name)

    def _call(self, method, signature='', args=(), iface=ELECTION_IFACE):
        return self.conn.call_blocking(BUS_NAME, self.path, iface, method, signature, args, timeout=T(30))

    def get_term(self):
        return term_tuple(self._call('GetTerm'))

    def enter(self, id='', flags=0):
        return term_tuple(self._call('Enter', 'st', (id, dbus.UInt64(flags))))

    def leave(self, id=''):
        return term_tuple(self._call('Leave', 's', (id,)))

    def anoint(self, id):
        return term_tuple(self._call('Anoint', 's', (id,)))

    def promote(self, id):
        return term_tuple(self._call('Promote', 's', (id,)))

    def evict(self, id):
        return term_tuple(self._call('Evict', 's', (id,)))

    def call_async(self, method, signature, args, on_reply, on_error):
        self.conn.call_async(BUS_NAME, self.path, ELECTION_IFACE, method, signature, args,
                             on_reply, on_error, timeout=T(60))

    def get(self, prop):
        return self._call('Get', 'ss', (ELECTION_IFACE, prop), PROPERTIES_IFACE)

    def get_all(self):
        return self._call('GetAll', 's', (ELECTION_IFACE,), PROPERTIES_IFACE)


class Client:
    """One bus connection in this process."""

    def __init__(self, bus):
        self.bus = bus
        self.conn = bus.connect()

    @property
    def unique_name(self):
        return str(self.conn.get_unique_name())

    def call(self, path, iface, method, signature='', args=()):
        return self.conn.call_blocking(BUS_NAME, path, iface, method, signature, args, timeout=T(30))

    def get_election(self, name):
        return str(self.call(MANAGER_PATH, MANAGER_IFACE, 'GetElection', 's', (name,)))

    def list_elections(self):
        return [(str(n), int(t), str(l), str(p)) for (n, t, l, p) in
                self.call(MANAGER_PATH, MANAGER_IFACE, 'ListElections')]

    def manager_get(self, prop):
        return self.call(MANAGER_PATH, PROPERTIES_IFACE, 'Get', 'ss', (MANAGER_IFACE, prop))

    def manager_get_all(self):
        return self.call(MANAGER_PATH, PROPERTIES_IFACE, 'GetAll', 's', (MANAGER_IFACE,))

    def managed_objects(self):
        return self.call(MANAGER_PATH, OBJECT_MANAGER_IFACE, 'GetManagedObjects')

    def election(self, name):
        return Election(self, name)

    def introspect(self, path):
        return str(self.call(path, 'org.freedesktop.DBus.Introspectable', 'Introspect'))

    def ping(self):
        """A round trip to the daemon: everything it sent this connection before is queued here."""
        self.call(MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping')

    def close(self):
        self.conn.close()


class SignalRecorder:
    """Records TermChanged and PropertiesChanged from electiond on its own connection."""

    def __init__(self, bus, path=None):
        self.client = Client(bus)
        self.events = []   # ('term', path, (t, s, as)) | ('props', path, iface, {changed}, [invalidated])
        conn = self.client.conn
        conn.add_signal_receiver(self._on_term, signal_name='TermChanged', dbus_interface=ELECTION_IFACE,
                                 path=path, path_keyword='path', sender_keyword='sender')
        conn.add_signal_receiver(self._on_props, signal_name='PropertiesChanged',
                                 dbus_interface=PROPERTIES_IFACE, path=path, path_keyword='path',
                                 sender_keyword='sender')

    def _on_term(self, t, s, a, path=None, sender=None):
        self.events.append(('term', str(path), term_tuple((t, s, a))))

    def _on_props(self, iface, changed, invalidated, path=None, sender=None):
        if not str(path).startswith(MANAGER_PATH):
            return
        self.events.append(('props', str(path), str(iface), dict(changed), [str(i) for i in invalidated]))

    def sync(self):
        """After this, every signal the daemon emitted before answering a ping has been recorded."""
        self.client.ping()
        pump()

    def terms(self, path=None):
        return [e[2] for e in self.events if e[0] == 'term' and (path is None or e[1] == path)]

    def props(self, path=None):
        return [e for e in self.events if e[0] == 'props' and (path is None or e[1] == path)]

    def wait_terms(self, n, path=None, timeout=5):
        return wait_until(lambda: len(self.terms(path)) >= n and self.terms(path),
                          timeout, f'{n} TermChanged signals')

    def wait_for_term(self, pred, path=None, timeout=5, what='a matching TermChanged'):
        return wait_until(lambda: next((t for t in self.terms(path) if pred(t)), None), timeout, what)

    def clear(self):
        self.events.clear()

    def close(self):
        self.client.close()


class ClientProcess:
    """A separate client process (optionally as another uid) on one bus connection, driven by
    JSON lines: requests ["enter", election, id, flags], ["leave"|"anoint"|"promote"|"evict",
    election, id], ["get_term", election], ["list"], ["get_election", name], ["call", path,
    interface, method, signature, args], ["enter_and_exit", election, id, flags[, n]]; answers
    {"ok": value} or {"error": "org.x.Error"}. kill() sends SIGKILL."""

    def __init__(self, bus, uid=None, gid=None):
        argv = ['/usr/bin/python3', os.path.abspath(__file__), 'client', bus.address]
        if uid is not None:
            gid = uid if gid is None else gid
            argv = ['setpriv', f'--reuid={uid}', f'--regid={gid}', '--clear-groups'] + argv
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        hello = self._read()
        self.unique_name = hello['unique_name']
        self.uid = hello['uid']

    def _read(self, timeout=30):
        deadline = time.monotonic() + T(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('client process did not answer')
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError('client process died: ' + self.proc.stderr.read())
                return json.loads(line)

    def send(self, *request):
        """Sends a request without waiting for its answer (see receive())."""
        self.proc.stdin.write(json.dumps(list(request)) + '\n')
        self.proc.stdin.flush()

    def ready(self):
        """Whether an answer is waiting."""
        return bool(select.select([self.proc.stdout], [], [], 0)[0])

    def call(self, *request):
        """Returns ('ok', (t, s, as) or other value) or ('error', name)."""
        self.send(*request)
        return self.receive()

    def receive(self, timeout=30):
        ans = self._read(timeout)
        if 'error' in ans:
            return ('error', ans['error'])
        v = ans['ok']
        if isinstance(v, list) and len(v) == 3 and isinstance(v[0], int):
            v = (v[0], v[1], v[2])
        return ('ok', v)

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=T(10))
        self._close_pipes()

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=T(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_pipes()

    def _close_pipes(self):
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


def run_as(bus, requests, uid=NOBODY):
    """Runs the requests in a fresh client process as uid; returns the list of answers."""
    p = ClientProcess(bus, uid=uid)
    try:
        return [p.call(*r) for r in requests]
    finally:
        p.close()


class PolkitMock:
    """python3-dbusmock's polkitd template on the private bus. By default it refuses everything."""

    def __init__(self, bus):
        self.bus = bus
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address)
        self.log = tempfile.TemporaryFile(mode='w+')
        self.proc = subprocess.Popen(['/usr/bin/python3', '-m', 'dbusmock', '--system', '--template', 'polkitd'],
                                     env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self.proc.poll() is not None or
                       self.bus.owner_pid('org.freedesktop.PolicyKit1') == self.proc.pid,
                       10, 'the polkit mock')
        except TimeoutError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            self.log.seek(0)
            raise RuntimeError('polkit mock died: ' + self.log.read())

    def set_allowed(self, actions):
        self.bus.conn.call_blocking('org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority',
                                    'org.freedesktop.DBus.Mock', 'SetAllowed', 'as', (actions,), timeout=T(10))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=T(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --- client mode (runs in a child process, possibly as nobody) ---

def _client_main(address):
    conn = dbus.bus.BusConnection(address)

    def call(path, iface, method, sig='', args=()):
        return conn.call_blocking(BUS_NAME, path, iface, method, sig, args, timeout=60)

    def election(name):
        return str(call(MANAGER_PATH, MANAGER_IFACE, 'GetElection', 's', (name,)))

    def out(obj):
        sys.stdout.write(json.dumps(obj) + '\n')
        sys.stdout.flush()

    out({'unique_name': str(conn.get_unique_name()), 'uid': os.getuid()})
    for line in sys.stdin:
        req = json.loads(line)
        op, args = req[0], req[1:]
        try:
            if op == 'enter':
                v = call(election(args[0]), ELECTION_IFACE, 'Enter', 'st', (args[1], dbus.UInt64(args[2])))
            elif op in ('leave', 'anoint', 'promote', 'evict'):
                v = call(election(args[0]), ELECTION_IFACE, op.capitalize(), 's', (args[1],))
            elif op == 'get_term':
                v = call(election(args[0]), ELECTION_IFACE, 'GetTerm')
            elif op == 'list':
                out({'ok': [[str(n), int(t), str(l), str(p)] for (n, t, l, p) in
                            call(MANAGER_PATH, MANAGER_IFACE, 'ListElections')]})
                continue
            elif op == 'get_election':
                out({'ok': election(args[0])})
                continue
            elif op == 'call':
                # generic: path, interface, method, signature, args -> 'ok' (the value is not kept)
                call(args[0], args[1], args[2], args[3], tuple(args[4]))
                out({'ok': 'ok'})
                continue
            elif op == 'enter_and_exit':
                # the Enter reaches the daemon, its sender is gone before it commits
                # (args: election, id, flags[, how many: ids id0..idN-1])
                path = election(args[0])
                ids = [args[1]] if len(args) < 4 else [f'{args[1]}{i}' for i in range(args[3])]
                for i in ids:
                    msg = dbus.lowlevel.MethodCallMessage(BUS_NAME, path, ELECTION_IFACE, 'Enter')
                    msg.append(i, dbus.UInt64(args[2]), signature='st')
                    conn.send_message(msg)
                conn.flush()
                os._exit(0)
            else:
                out({'error': 'bad-request:' + op})
                continue
            out({'ok': list(term_tuple(v))})
        except dbus.exceptions.DBusException as e:
            out({'error': e.get_dbus_name()})


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'client':
        _client_main(sys.argv[2])
    else:
        sys.exit('usage: electiond_test.py client ADDRESS')


class DaemonTestCase(unittest.TestCase):
    """One private bus and one daemon per test class; each test uses its own election names."""

    config_extra = ''
    node_name = 'test-node'
    with_polkit = False

    @classmethod
    def setUpClass(cls):
        cls.bus = PrivateBus()
        cls.polkit = PolkitMock(cls.bus) if cls.with_polkit else None
        try:
            cls.daemon = Daemon(cls.bus, node_name=cls.node_name, config_extra=cls.config_extra)
        except Exception:
            if cls.polkit:
                cls.polkit.stop()
            cls.bus.stop()
            raise
        cls.client = Client(cls.bus)
        cls._counter = 0

    @classmethod
    def tearDownClass(cls):
        try:
            cls.client.close()
            cls.daemon.cleanup()
        finally:
            if cls.polkit:
                cls.polkit.stop()
            cls.bus.stop()

    def setUp(self):
        if not self.daemon.running():
            self.fail('electiond died:\n' + self.daemon.output()[-8000:])

    def tearDown(self):
        # A crash during the test shows here, next to the test that caused it.
        if not self.daemon.running():
            self.fail('electiond died:\n' + self.daemon.output()[-8000:])
        check_sanitizer_output(self.daemon.output())

    def fresh_name(self, tag=''):
        type(self)._counter += 1
        return f'{self._testMethodName}-{tag}{self._counter}'

    def assertDBusError(self, name, fn, *args, **kwargs):
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.get_dbus_name(), name, str(cm.exception))
        return cm.exception


def main():
    unittest.main(verbosity=2)
