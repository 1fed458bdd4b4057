# SPDX-License-Identifier: LGPL-2.1-or-later
"""A small, strict parser of the OpenMetrics / Prometheus text that `electionctl metrics` prints:
enough to check what we emit (families, TYPE/HELP, label escaping, # EOF), not a full implementation."""

import math
import re

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*'
TYPES = ('counter', 'gauge', 'histogram')


class ParseError(Exception):
    pass


def _labels(text, lineno):
    labels, i = {}, 0
    while i < len(text):
        m = re.match(LABEL + '="', text[i:])
        if not m:
            raise ParseError(f'line {lineno}: bad label at {text[i:]!r}')
        key = m.group(0)[:-2]
        i += m.end()
        value = []
        while True:
            if i >= len(text):
                raise ParseError(f'line {lineno}: unterminated label value')
            c = text[i]
            if c == '\\':
                nxt = text[i + 1:i + 2]
                value.append({'\\': '\\', '"': '"', 'n': '\n'}.get(nxt) or ParseError)
                if value[-1] is ParseError:
                    raise ParseError(f'line {lineno}: bad escape \\{nxt}')
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        if key in labels:
            raise ParseError(f'line {lineno}: label {key} twice')
        labels[key] = ''.join(value)
        if i < len(text):
            if text[i] != ',':
                raise ParseError(f'line {lineno}: expected , at {text[i:]!r}')
            i += 1
    return labels


def _value(s, lineno):
    if s in ('+Inf', '-Inf', 'NaN'):
        return float(s.replace('+', ''))
    if not re.fullmatch(r'-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?', s):
        raise ParseError(f'line {lineno}: bad value {s!r}')
    return float(s)


def parse(text, openmetrics=True):
    """Returns {family: {'type', 'help', 'samples': [(name, labels, value)]}}."""
    families, current = {}, None
    lines = text.split('\n')
    if lines[-1] != '':
        raise ParseError('no final newline')
    lines = lines[:-1]
    if openmetrics:
        if not lines or lines[-1] != '# EOF':
            raise ParseError('no # EOF at the end')
        lines = lines[:-1]
    for n, line in enumerate(lines, 1):
        if line == '# EOF':
            raise ParseError(f'line {n}: # EOF before the end')
        if line.startswith('#'):
            m = re.fullmatch(r'# (TYPE|HELP) (' + NAME + r') (.*)', line)
            if not m:
                raise ParseError(f'line {n}: bad comment {line!r}')
            kind, fam, rest = m.groups()
            if kind == 'TYPE':
                if fam in families:
                    raise ParseError(f'line {n}: family {fam} not contiguous')
                if rest not in TYPES:
                    raise ParseError(f'line {n}: unknown type {rest}')
                families[fam] = {'type': rest, 'help': None, 'samples': []}
                current = fam
            else:
                if fam != current:
                    raise ParseError(f'line {n}: HELP for {fam} outside its family')
                families[fam]['help'] = rest
            continue
        m = re.fullmatch(r'(' + NAME + r')(?:\{(.*)\})? (\S+)', line)
        if not m:
            raise ParseError(f'line {n}: bad sample {line!r}')
        name, labels, value = m.group(1), _labels(m.group(2) or '', n), _value(m.group(3), n)
        if current is None:
            raise ParseError(f'line {n}: sample before any TYPE')
        fam = families[current]
        allowed = {'gauge': [current],
                   'counter': [current + '_total'] if openmetrics else [current],
                   'histogram': [current + s for s in ('_bucket', '_count', '_sum')]}[fam['type']]
        if name not in allowed:
            raise ParseError(f'line {n}: sample {name} does not belong to {fam["type"]} {current}')
        if fam['type'] == 'counter' and (value < 0 or math.isnan(value)):
            raise ParseError(f'line {n}: counter {name} negative')
        if (name, labels) in [(s[0], s[1]) for s in fam['samples']]:
            raise ParseError(f'line {n}: duplicate sample {name}{labels}')
        fam['samples'].append((name, labels, value))
    for fam, f in families.items():
        if f['type'] == 'histogram':
            buckets = [(s[1]['le'], s[2]) for s in f['samples'] if s[0].endswith('_bucket')]
            if not buckets or buckets[-1][0] != '+Inf':
                raise ParseError(f'{fam}: no +Inf bucket')
            counts = [v for _, v in buckets]
            if counts != sorted(counts):
                raise ParseError(f'{fam}: buckets not cumulative')
            count = [s[2] for s in f['samples'] if s[0] == fam + '_count']
            if count != [counts[-1]]:
                raise ParseError(f'{fam}: _count {count} != +Inf bucket {counts[-1]}')
    return families


def value(families, family, **labels):
    """The value of the one sample of family with these labels (a subset match must be unique)."""
    f = families[family]
    found = [s[2] for s in f['samples'] if all(s[1].get(k) == v for k, v in labels.items())
             and not s[0].endswith(('_count', '_sum'))]
    if len(found) != 1:
        raise KeyError(f'{family}{labels}: {len(found)} samples')
    return found[0]
