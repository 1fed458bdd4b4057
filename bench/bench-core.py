#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Core benchmark (not a test): Enter/Leave throughput and latency at 1 and 32 clients, idle RSS,
RSS with 10,000 elections, and the time from exec to owning the bus name. Runs the real daemon on
a private bus (tests/lib/electiond_test.py), prints a Markdown table and writes bench/results-core.md.

    /usr/bin/python3 bench/bench-core.py [--build-dir build] [--seconds 3] [--elections 10000]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lib'))
os.environ.setdefault('ELECTIOND_SOURCE_ROOT', ROOT)

import electiond_test as et  # noqa: E402


def rss_kib(pid, key='VmRSS'):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError('no ' + key)


def fdatasync_ms(directory, n=200):
    """Median and p99 of a 4 KiB write + fdatasync where the state dir lives: the floor of a commit."""
    path = os.path.join(directory, 'fsync-probe')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(n):
            t0 = time.monotonic()
            os.pwrite(fd, b'x' * 4096, 0)
            os.fdatasync(fd)
            times.append(time.monotonic() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.99 * (len(times) - 1))] * 1e3


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
    mem = next((int(l.split()[1]) // 1024 for l in open('/proc/meminfo') if l.startswith('MemTotal')), 0)
    load = open('/proc/loadavg').read().split()[:3]
    return (f'{os.cpu_count()} CPUs ({cpu}), {mem} MiB RAM, Linux {platform.release()}; '
            f'load average {" ".join(load)} when the run ended (the machine is shared)')


def run_client(client, bus, *args):
    r = subprocess.run([client, '--address', bus.address, *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f'bench-client {args} failed: {r.stderr}')
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build-dir', default=os.environ.get('ELECTIOND_BUILD_ROOT', os.path.join(ROOT, 'build')))
    ap.add_argument('--seconds', type=float, default=3.0)
    ap.add_argument('--elections', type=int, default=10000)
    ap.add_argument('--starts', type=int, default=20)
    ap.add_argument('--output', default=os.path.join(HERE, 'results-core.md'))
    a = ap.parse_args()

    build = os.path.abspath(a.build_dir)
    os.environ['ELECTIOND'] = os.path.join(build, 'daemon', 'electiond')
    client = os.path.join(build, 'tests', 'bench-client')
    for p in (os.environ['ELECTIOND'], client):
        if not os.access(p, os.X_OK):
            sys.exit(f'bench-core: {p} missing; build first (ninja -C {a.build_dir})')

    res = {}
    bus = et.PrivateBus()
    try:
        # start time: exec -> bus name owned; a fresh state dir each time, and restarts on one dir
        fresh, again = [], []
        for _ in range(a.starts):
            d = et.Daemon(bus, node_name='bench')
            fresh.append(d.owned_time - d.exec_time)
            d.stop()
            d.start()
            again.append(d.owned_time - d.exec_time)
            d.cleanup()
        res['start_fresh_ms'] = statistics.median(fresh) * 1e3
        res['start_restart_ms'] = statistics.median(again) * 1e3

        d = et.Daemon(bus, node_name='bench')
        res['fdatasync_ms'] = fdatasync_ms(d.state_dir)
        try:
            # idle: settled after start, no elections
            c = et.Client(bus)
            c.manager_get('NodeName')
            time.sleep(1.0)
            res['idle_rss_kib'] = rss_kib(d.pid)
            res['idle_anon_kib'] = rss_kib(d.pid, 'RssAnon')

            for n in (1, 32):
                cpu0 = (cpu_seconds(d.pid), cpu_seconds(bus.proc.pid))
                res[f'load{n}'] = run_client(client, bus, '--clients', str(n), '--seconds', str(a.seconds),
                                             '--election', f'bench-{n}')
                calls = res[f'load{n}']['calls'] or 1
                res[f'cpu{n}'] = tuple((cpu_seconds(p) - c0) * 1e6 / calls
                                       for p, c0 in zip((d.pid, bus.proc.pid), cpu0))

            t = run_client(client, bus, '--populate', str(a.elections))
            res['populate'] = t
            c.ping()
            time.sleep(1.0)
            res['rss_elections_kib'] = rss_kib(d.pid)
            res['anon_elections_kib'] = rss_kib(d.pid, 'RssAnon')
            listed = len(c.list_elections())
            if listed < a.elections:
                raise RuntimeError(f'only {listed} elections listed after populating {a.elections}')
            c.close()
            # a restart that has to load all of them
            d.stop()
            d.start(timeout=60)
            res['start_elections_ms'] = (d.owned_time - d.exec_time) * 1e3
            d.stop()
        finally:
            d.cleanup()
    finally:
        bus.stop()

    l1, l32 = res['load1'], res['load32']
    rows = [
        ('Enter/Leave ops/s, 1 client', f"{l1['ops_per_sec']:.0f}", '', ''),
        ('latency p50 / p99, 1 client', f"{l1['p50_usec'] / 1e3:.2f} / {l1['p99_usec'] / 1e3:.2f} ms", '', ''),
        ('Enter/Leave ops/s, 32 clients', f"{l32['ops_per_sec']:.0f}", '>= 5000',
         'yes' if l32['ops_per_sec'] >= 5000 else 'NO'),
        ('latency p50 / p99, 32 clients', f"{l32['p50_usec'] / 1e3:.2f} / {l32['p99_usec'] / 1e3:.2f} ms",
         'p99 < 10 ms', 'yes' if l32['p99_usec'] < 10000 else 'NO'),
        ('CPU per call, 32 clients: electiond / dbus-daemon (incl. warm-up)',
         f"{res['cpu32'][0]:.0f} / {res['cpu32'][1]:.0f} µs", '', ''),
        ('idle RSS (of which anonymous)',
         f"{res['idle_rss_kib'] / 1024:.1f} MiB ({res['idle_anon_kib'] / 1024:.1f} MiB)", '< 5 MB',
         'yes' if res['idle_rss_kib'] * 1024 < 5e6 else 'NO'),
        (f'RSS with {a.elections} elections, 1 persistent candidate each (anonymous)',
         f"{res['rss_elections_kib'] / 1024:.1f} MiB ({res['anon_elections_kib'] / 1024:.1f} MiB)", '', ''),
        (f'populating {a.elections} elections (64 calls in flight)',
         f"{res['populate']['seconds']:.2f} s", '', ''),
        (f'start: exec to bus name owned, fresh state (median of {a.starts})',
         f"{res['start_fresh_ms']:.1f} ms", '< 100 ms', 'yes' if res['start_fresh_ms'] < 100 else 'NO'),
        (f'start: exec to bus name owned, existing state (median of {a.starts})',
         f"{res['start_restart_ms']:.1f} ms", '< 100 ms', 'yes' if res['start_restart_ms'] < 100 else 'NO'),
    ]
    rows.append((f'restart with {a.elections} elections: exec to bus name owned', f"{res['start_elections_ms']:.1f} ms", '', ''))
    rows.append(('4 KiB write + fdatasync in the state dir, p50 / p99 of 200',
                 f"{res['fdatasync_ms'][0]:.2f} / {res['fdatasync_ms'][1]:.2f} ms", '', ''))
    table = ['| measure | result | goal | met |', '|---|---|---|---|']
    table += [f'| {m} | {r} | {g} | {ok} |' for (m, r, g, ok) in rows]
    rev = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    text = '\n'.join([
        '# electiond core benchmark',
        '',
        f'Machine: {machine()}. Commit {rev or "?"}, build dir `{os.path.relpath(build, ROOT)}`, '
        f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}.',
        f'Load: bench-client, each connection one call in flight (Enter then Leave of its own id, '
        f'connection-bound), {a.seconds:g} s measured after 0.5 s warm-up; private dbus-daemon on the same machine.',
        '',
        *table,
        '',
    ])
    print(text)
    with open(a.output, 'w') as f:
        f.write(text)


if __name__ == '__main__':
    main()
