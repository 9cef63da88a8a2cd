#!/usr/bin/env python3
"""A maintainer's aid for the @retval lists of the public headers (not a test).

Builds a rough call graph of lib/**/*.c (function bodies, direct calls, and the
backbone architectures' function-pointer tables) and, for each public function,
the set of GTL_STATUS_* values mentioned anywhere below it. That set OVER-
approximates what a function can return (a callee's check may be unreachable
from it; lower-layer self-checks report BAD_STATE, see status.h), so read the
code for each difference. It misses statuses that travel in variables from
outside libgtl (oneDNN's are mapped in gtl__status_from_dnnl, which is seen).

At the time of writing the only differences are the lower-layer BAD_STATE
self-checks and NUMERIC under gtl_adapt / gtl_model_train_stage / the
evaluator runners (their step loop skips non-finite steps instead).

  status_paths.py SRC                 compare every header list with the code
  status_paths.py SRC FN STATUS       print call paths from FN to STATUS
"""
import collections
import glob
import os
import re
import sys


def strip(s):
    s = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group(0).count('\n'), s, flags=re.S)
    s = re.sub(r'//[^\n]*', '', s)
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', s)


class Graph:
    def __init__(self, src):
        self.body, self.file = {}, {}
        texts = {f: strip(open(f).read())
                 for f in glob.glob(os.path.join(src, 'lib/**/*.c'), recursive=True)}
        defn = re.compile(r'^(?:static\s+)?(?:inline\s+)?[A-Za-z_][\w\s\*]*?\b([A-Za-z_]\w*)'
                          r'\s*\(([^;{]*?)\)\s*\n\{', re.M | re.S)
        for f, s in texts.items():
            for m in defn.finditer(s):
                key = m.group(1)
                if key in self.body:
                    key += '@' + os.path.basename(f)
                self.body[key] = s[m.end():s.find('\n}', m.end())]
                self.file[key] = f
        table = collections.defaultdict(set)
        for f, s in texts.items():
            for m in re.finditer(r'^\s*\.(\w+)\s*=\s*(\w+),?\s*$', s, re.M):
                if m.group(2) not in ('true', 'false', 'NULL'):
                    table[m.group(1)].add((m.group(2), f))
        skip = set('if for while switch return sizeof case do else'.split())
        self.direct, self.calls = {}, {}
        for n, b in self.body.items():
            self.direct[n] = set(re.findall(r'GTL_STATUS_([A-Z_]+)', b))
            calls = set(c for c in re.findall(r'\b([A-Za-z_]\w*)\s*\(', b) if c not in skip)
            for c in list(calls):
                for fn, f in table.get(c, ()):
                    k = fn + '@' + os.path.basename(f)
                    calls.add(k if k in self.body else fn)
            self.calls[n] = calls
        self.memo = {}

    def resolve(self, c, caller):
        if '@' in c and c in self.body:
            return c
        k = c + '@' + os.path.basename(self.file[caller])
        return k if k in self.body else (c if c in self.body else None)

    def closure(self, n, stack=()):
        if n in self.memo:
            return self.memo[n]
        if n in stack:
            return set()
        r = set(self.direct[n])
        for c in self.calls[n]:
            k = self.resolve(c, n)
            if k:
                r |= self.closure(k, stack + (n,))
        self.memo[n] = r
        return r

    def paths(self, n, st, depth=0, seen=None):
        seen = set() if seen is None else seen
        out = [[n]] if st in self.direct[n] else []
        if depth < 8:
            for c in sorted(self.calls[n]):
                k = self.resolve(c, n)
                if k and k not in seen and st in self.closure(k):
                    seen.add(k)
                    out += [[n] + p for p in self.paths(k, st, depth + 1, seen)]
        return out


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else '.'
    g = Graph(src)
    if len(sys.argv) == 4:
        for p in g.paths(sys.argv[2], sys.argv[3].replace('GTL_STATUS_', ''))[:20]:
            print(' -> '.join(p))
        return 0
    for h in sorted(glob.glob(os.path.join(src, 'include/gtl/*.h'))):
        s = open(h).read()
        for m in re.finditer(r'/\*\*((?:(?!\*/).)*?)\*/\s*GTL_API\s+gtl_status\s+(gtl_\w+)\s*\(',
                             s, re.S):
            doc = set(re.findall(r'@retval\s+:*GTL_STATUS_([A-Z_]+)', m.group(1)))
            if m.group(2) not in g.body:
                continue
            code = g.closure(m.group(2))
            more, less = sorted(code - doc - {'OK'}), sorted(doc - code - {'OK'})
            if more or less:
                print('%-34s code also mentions: %-30s listed but not seen: %s'
                      % (m.group(2), ','.join(more) or '-', ','.join(less) or '-'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
