#!/usr/bin/env python3
"""Summarise meson testlog.json files: one line per non-passing test, then 'N passed, N failed, N skipped'.

    test-summary.py [--skip-fails] [--failed NAME]... TESTLOG.json...

A test that exits 0 although every case in it was skipped (unittest "OK (skipped=N)" with N equal
to the number run, or TAP/GLib output whose every "ok" line is "# SKIP") counts as skipped, not
passed; partly skipped tests pass but are listed. --failed NAME adds a failure that has no test log
(a build step). A missing or empty log is a failure. Exit 1 if anything failed, if no test ran at
all, or (--skip-fails, used in CI) if anything was skipped."""
import json
import os
import re
import sys


def build_dir(path):
    """'build-test' for build-test/meson-logs/testlog.json, however the path is given."""
    return os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))


def skipped_cases(output):
    """(skipped, total) cases reported inside one test's output, or (0, 0) if it says nothing."""
    m = re.search(r'^Ran (\d+) tests? in ', output, re.M)
    if m:
        s = re.search(r'^OK \(.*skipped=(\d+)', output, re.M)
        return (int(s.group(1)) if s else 0, int(m.group(1)))
    plan = re.search(r'^1\.\.(\d+)\s*$', output, re.M)
    if plan:
        oks = re.findall(r'^ok \d+.*$', output, re.M)
        return (sum(1 for line in oks if re.search(r'#\s*SKIP', line, re.I)), int(plan.group(1)))
    return (0, 0)


def main(argv):
    args = argv[1:]
    skip_fails = False
    passed = failed = skipped = 0
    paths = []
    while args:
        a = args.pop(0)
        if a == '--skip-fails':
            skip_fails = True
        elif a == '--failed' and args:
            failed += 1
            print(f'FAILED: {args.pop(0)}')
        else:
            paths.append(a)

    for path in paths:
        n = 0
        try:
            with open(path) as f:
                lines = [line.strip() for line in f if line.strip()]
        except OSError as e:
            failed += 1
            print(f'FAILED: cannot read {path}: {e.strerror}')
            continue
        for line in lines:
            t = json.loads(line)
            n += 1
            res = t.get('result')
            name = f"{build_dir(path)}:{t.get('name')}"
            if res in ('OK', 'EXPECTEDFAIL'):
                s, total = skipped_cases((t.get('stdout') or '') + '\n' + (t.get('stderr') or ''))
                if total and s == total:
                    skipped += 1
                    print(f'skipped (every case): {name}')
                    continue
                if s:
                    print(f'partly skipped ({s} of {total} cases): {name}')
                passed += 1
            elif res == 'SKIP':
                skipped += 1
                print(f'skipped: {name}')
            else:
                failed += 1
                print(f'FAILED ({res}): {name}')
        if n == 0:
            failed += 1
            print(f'FAILED: no test results in {path}')

    print(f'{passed} passed, {failed} failed, {skipped} skipped')
    if skip_fails and skipped:
        print('(CI: a skipped test counts as a failure; the machine lacks something the test needs)')
    return 1 if failed or passed == 0 or (skip_fails and skipped) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
