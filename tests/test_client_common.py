# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers shared by the client tests (test_client_*.py): paths of the built client programs and a
subprocess whose stdout is read line by line with deadlines."""

import json
import os
import select
import signal
import subprocess
import time

from electiond_test import T

BUILD_ROOT = os.environ.get('ELECTIOND_BUILD_ROOT', '')
ELECTIONCTL = os.path.join(BUILD_ROOT, 'client-lib', 'electionctl')
TEST_LIBELECTION = os.path.join(BUILD_ROOT, 'tests', 'test-libelection')
CAMPAIGN = os.path.join(BUILD_ROOT, 'client-lib', 'campaign')
LIBELECTION = os.path.join(BUILD_ROOT, 'client-lib', 'libelection.so')
LOCALEDIR = os.path.join(BUILD_ROOT, 'po')


def client_env(bus, **extra):
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address, LC_ALL='C.UTF-8')
    env.pop('LANGUAGE', None)
    env.update(extra)
    return env


class LineProcess:
    """A child whose stdout lines we collect without blocking; stderr goes to a temp file."""

    def __init__(self, argv, env, **kwargs):
        self.stderr_path = f'/tmp/electiond-client-test-{os.getpid()}-{time.monotonic_ns()}.err'
        self._err = open(self.stderr_path, 'w+')
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._err, **kwargs)
        self.lines = []
        self._buf = b''

    def poll_lines(self, timeout=0.0):
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if ready:
            chunk = os.read(fd, 65536)
            self._buf += chunk
            *done, self._buf = self._buf.split(b'\n')
            self.lines.extend(d.decode() for d in done)
            return bool(chunk)
        return False

    def wait_for(self, cond, timeout=10, what='output'):
        """Reads until cond(lines) is truthy; returns its value."""
        deadline = time.monotonic() + T(timeout)
        while True:
            v = cond(self.lines)
            if v:
                return v
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f'timed out waiting for {what}; got {self.lines[-20:]!r}, '
                                   f'stderr: {self.stderr()[-2000:]!r}')
            if not self.poll_lines(min(left, 0.1)) and self.proc.poll() is not None:
                # the process is gone; drain and check once more
                while self.poll_lines(0):
                    pass
                v = cond(self.lines)
                if v:
                    return v
                raise AssertionError(f'process exited ({self.proc.returncode}) before {what}; '
                                     f'got {self.lines[-20:]!r}, stderr: {self.stderr()[-2000:]!r}')

    def json_lines(self):
        return [json.loads(l) for l in self.lines if l.strip()]

    def stderr(self):
        self._err.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def send(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=10):
        rc = self.proc.wait(timeout=T(timeout))
        while self.poll_lines(0):
            pass
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=10):
        self.send(sig)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self._err.close()
        try:
            os.unlink(self.stderr_path)
        except OSError:
            pass
