#!/usr/bin/env python3
"""Checks that the public headers carry the contract (test docs_header_contract).

For every include/gtl/*.h:
  - documentation ratio: lines that are only comment / non-blank lines, >= 50 %;
  - every GTL_API function has a /** ... */ block right above it, with an
    @param for each named parameter (and no @param naming something else);
  - a function returning gtl_status lists its statuses as @retval lines, one
    per status (::GTL_STATUS_OK first), each a real gtl_status value, none twice,
    and no prose `@return ::GTL_STATUS_...` list beside them;
  - every status the function's own body (lib/api, lib/core) returns directly
    (`gtl__error(GTL_STATUS_X` or `return GTL_STATUS_X`) is in its list, so a
    new error path added there cannot go undocumented. (Statuses that come from
    callees are verified by reading the code, with test/docs/status_paths.py.)

Usage: check_headers.py <source dir> [--min-ratio 0.5]. Prints one line per
header and every problem; exits 1 if there is any.
"""
import glob
import os
import re
import sys


def comment_only_lines(text):
    """(non-blank lines, lines holding comment text and no code)."""
    in_comment = False
    nonblank = doc = 0
    for line in text.split('\n'):
        if not line.strip():
            continue
        nonblank += 1
        has_comment, has_code = in_comment, False
        i = 0
        while i < len(line):
            if in_comment:
                j = line.find('*/', i)
                if j < 0:
                    break
                in_comment, i, has_comment = False, j + 2, True
                continue
            starts = [j for j in (line.find('/*', i), line.find('//', i)) if j >= 0]
            if not starts:
                has_code = has_code or bool(line[i:].strip())
                break
            j = min(starts)
            has_code = has_code or bool(line[i:j].strip())
            has_comment = True
            if line.startswith('//', j):
                break
            in_comment, i = True, j + 2
        if has_comment and not has_code:
            doc += 1
    return nonblank, doc


def status_names(src):
    text = open(os.path.join(src, 'include/gtl/status.h')).read()
    return set(re.findall(r'^\s*(GTL_STATUS_[A-Z_]+)\s*=', text, re.M))


def impl_bodies(src):
    """name -> body of each public function defined in lib/ (lib/api, lib/core)."""
    bodies = {}
    for path in glob.glob(os.path.join(src, 'lib/**/*.c'), recursive=True):
        text = open(path).read()
        for m in re.finditer(r'^gtl_status\s+(gtl_[a-z0-9_]+)\s*\([^;{]*\)\s*\n\{', text, re.M):
            end = text.find('\n}', m.end())
            bodies[m.group(1)] = text[m.end():end]
    return bodies


def param_names(decl):
    args = decl[decl.index('(') + 1:decl.rindex(')')]
    if args.strip() in ('void', ''):
        return []
    names = []
    for a in args.split(','):
        a = re.sub(r'\[.*?\]', '', a).strip()
        m = re.search(r'([A-Za-z_]\w*)\s*$', a)
        if m:
            names.append(m.group(1))
    return names


def check_header(path, statuses, bodies, problems):
    text = open(path).read()
    name = os.path.basename(path)
    n_functions = 0
    for m in re.finditer(r'^GTL_API\s+([^;]*?)\b(gtl_[a-z0-9_]+)\s*\(([^;]*?)\);', text,
                         re.M | re.S):
        n_functions += 1
        ret, fn = m.group(1).strip(), m.group(2)
        where = '%s: %s' % (name, fn)
        before = text[:m.start()].rstrip()
        if not before.endswith('*/') or before.rfind('/**') < before.rfind('*/', 0, -2):
            problems.append('%s: no /** ... */ documentation block right above it' % where)
            continue
        doc = before[before.rfind('/**'):]
        documented = re.findall(r'@param(?:\[[a-z,]+\])?\s+(\w+)', doc)
        declared = param_names(m.group(0))
        for p in declared:
            if p not in documented:
                problems.append('%s: parameter %s has no @param' % (where, p))
        for p in documented:
            if p not in declared:
                problems.append('%s: @param %s names no parameter' % (where, p))
        if ret != 'gtl_status':
            if ret != 'void' and '@return' not in doc:
                problems.append('%s: returns %s but has no @return' % (where, ret))
            continue
        retvals = re.findall(r'@retval\s+:*(\w+)', doc)
        if not retvals:
            problems.append('%s: no @retval list of the statuses it can return' % where)
            continue
        if re.search(r'@return[^@]*GTL_STATUS_', doc):
            problems.append('%s: a prose @return status list beside the @retval lines' % where)
        if retvals[0] != 'GTL_STATUS_OK':
            problems.append('%s: the first @retval is not GTL_STATUS_OK' % where)
        for r in retvals:
            if r not in statuses:
                problems.append('%s: @retval %s is not a gtl_status value' % (where, r))
        for r in set(retvals):
            if retvals.count(r) > 1:
                problems.append('%s: @retval %s listed twice' % (where, r))
        if len(retvals) < 2:
            problems.append('%s: only GTL_STATUS_OK is listed' % where)
        body = bodies.get(fn)
        if body is None:
            problems.append('%s: no definition found in lib/' % where)
            continue
        direct = set(re.findall(r'(?:gtl__error\(\s*|return\s+)(GTL_STATUS_[A-Z_]+)', body))
        for st in sorted(direct - set(retvals)):
            problems.append('%s: its body returns %s, which its @retval list lacks' % (where, st))
    return n_functions


def main():
    args = sys.argv[1:]
    min_ratio = 0.5
    if '--min-ratio' in args:
        k = args.index('--min-ratio')
        min_ratio = float(args[k + 1])
        del args[k:k + 2]
    src = args[0] if args else os.path.join(os.path.dirname(__file__), '..', '..')
    statuses = status_names(src)
    bodies = impl_bodies(src)
    problems = []
    headers = sorted(glob.glob(os.path.join(src, 'include/gtl/*.h')))
    if not headers:
        problems.append('no headers under %s/include/gtl' % src)
    for h in headers:
        nonblank, doc = comment_only_lines(open(h).read())
        ratio = doc / nonblank if nonblank else 0.0
        n_fn = check_header(h, statuses, bodies, problems)
        print('%-12s %4d non-blank lines, %4d documentation: %5.1f %%  (%d functions)'
              % (os.path.basename(h), nonblank, doc, 100 * ratio, n_fn))
        if ratio < min_ratio:
            problems.append('%s: documentation ratio %.1f %% < %.0f %%'
                            % (os.path.basename(h), 100 * ratio, 100 * min_ratio))
    for p in problems:
        print('FAIL ' + p)
    print('%d problem(s)' % len(problems))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
