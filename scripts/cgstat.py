#!/usr/bin/env python3
"""cgstat.py: read callgrind output files (the Ir event) for scripts/bench-instr-ab.sh.

  cgstat.py total FILE [PREFIX]              total instructions of one dump, and with PREFIX also
                                             the self instructions of the functions named PREFIX*
  cgstat.py diff ROOT_A A1 A2 N ROOT_B B1 B2 [TOP [PREFIX]]
      self instructions per operation by function and by source line, for two trees:
      per-op(X) = (self(X2) - self(X1)) / N for each tree (X1 and X2 are two runs of the same
      benchmark N operations apart, so whatever both runs do once cancels); prints the functions
      and lines whose per-op count differs most between tree A (the base) and tree B (the
      change). File names are taken relative to each tree's ROOT so the two trees line up;
      lines are printed per tree, since line numbers move between commits.

Only self cost is summed (the cost line after a calls= line is the callee's inclusive cost and
is skipped), so the per-function figures add up to the total.
"""
import collections
import re
import sys

NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


def parse(path):
    """Returns (total, self_by_fn, self_by_line): fn -> Ir, (fn, file, line) -> Ir."""
    names = {"fl": {}, "fn": {}}
    fl = fi = fn = None
    by_fn = collections.Counter()
    by_line = collections.Counter()
    total = 0
    skip_next = False
    last = 0
    with open(path, errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                p = parts[0]
                if p == "*":
                    pos = last
                elif p[0] in "+-":
                    pos = last + int(p)
                else:
                    pos = int(p)
                last = pos
                if skip_next:
                    skip_next = False
                    continue
                ir = int(parts[1]) if len(parts) > 1 else 0
                by_fn[fn] += ir
                by_line[(fn, fi or fl, pos)] += ir
                continue
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
                continue
            key, _, val = line.partition("=")
            if key in ("fl", "fi", "fe", "cfl", "cfi", "fn", "cfn"):
                space = "fn" if key in ("fn", "cfn") else "fl"
                m = NAME.match(val)
                if m:
                    if m[2] is not None:
                        names[space][m[1]] = m[2]
                    name = names[space].get(m[1], val)
                else:
                    name = val
                if key == "fl":
                    fl, fi = name, None
                elif key in ("fi", "fe"):
                    fi = None if name == fl else name
                elif key == "fn":
                    # callgrind names recursion levels fn'2, fn'3...: one function for us
                    fn = re.sub(r"'\d+$", "", name)
                    fi = None
            elif key == "calls":
                skip_next = True
    return total, by_fn, by_line


def rel(name, root):
    if name and root and name.startswith(root):
        return name[len(root):].lstrip("/")
    return name or "?"


def per_op(root, a, b, n):
    _, fa, la = parse(a)
    _, fb, lb = parse(b)
    fns = {k: (fb[k] - fa[k]) / n for k in set(fa) | set(fb)}
    lines = collections.Counter()
    for k in set(la) | set(lb):
        lines[(k[0], rel(k[1], root), k[2])] += (lb[k] - la[k]) / n
    return fns, lines


def main():
    if sys.argv[1] == "total":
        total, fns, _ = parse(sys.argv[2])
        if len(sys.argv) > 3:
            print(total, sum(v for k, v in fns.items() if k and k.startswith(sys.argv[3])))
        else:
            print(total)
        return
    if sys.argv[1] != "diff":
        sys.exit("usage: cgstat.py total FILE | diff ROOT_A A1 A2 N ROOT_B B1 B2 [TOP]")
    ra, a1, a2, n, rb, b1, b2 = sys.argv[2:9]
    top = int(sys.argv[9]) if len(sys.argv) > 9 else 15
    prefix = sys.argv[10] if len(sys.argv) > 10 else ""
    n = float(n)
    fa, la = per_op(ra, a1, a2, n)
    fb, lb = per_op(rb, b1, b2, n)
    ta, tb = sum(fa.values()), sum(fb.values())
    print(f"  per operation: base {ta:.0f}, change {tb:.0f} instructions ({tb - ta:+.0f})")
    d = sorted(((fb.get(k, 0) - fa.get(k, 0), k) for k in set(fa) | set(fb)), key=lambda x: -abs(x[0]))
    groups = [("functions", d)]
    if prefix:
        ma = sum(v for k, v in fa.items() if k and k.startswith(prefix))
        mb = sum(v for k, v in fb.items() if k and k.startswith(prefix))
        print(f"  in {prefix}*: base {ma:.0f}, change {mb:.0f} ({mb - ma:+.0f})")
        groups.append((f"functions of {prefix}*", [x for x in d if x[1] and x[1].startswith(prefix)]))
    for label, rows in groups:
        print(f"  {label} whose self instructions per operation changed most (change - base):")
        for delta, k in rows[:top]:
            if abs(delta) < 1:
                break
            print(f"    {delta:+9.1f}  base {fa.get(k, 0):9.1f}  change {fb.get(k, 0):9.1f}  {k}")
    # the source lines of the functions of PREFIX that differ most, in each tree
    changed = [k for delta, k in (groups[-1][1][:top]) if abs(delta) >= 1]
    for label, lines in (("base", la), ("change", lb)):
        print(f"  {label}: source lines of those functions (self instructions per operation):")
        for f in changed:
            ls = sorted(((k[1], k[2], v) for k, v in lines.items() if k[0] == f and abs(v) >= 0.5), key=lambda x: (x[0], x[1]))
            if ls:
                print(f"    {f}")
                for file, line, v in ls:
                    print(f"      {v:9.1f}  {file}:{line}")


if __name__ == "__main__":
    main()
