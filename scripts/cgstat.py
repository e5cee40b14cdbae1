#!/usr/bin/env python3
"""cgstat.py: read callgrind output files (the Ir event) for scripts/bench-instr-ab.sh.

  cgstat.py total FILE                       total instructions of one dump
  cgstat.py diff ROOT_A A1 A2 N ROOT_B B1 B2 [TOP]
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
    """Returns (total, self_by_fn, self_by_line): fn -> Ir, (file, line) -> Ir."""
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
                by_line[(fi or fl, pos)] += ir
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
        lines[(rel(k[0], root), k[1])] += (lb[k] - la[k]) / n
    return fns, lines


def main():
    if sys.argv[1] == "total":
        print(parse(sys.argv[2])[0])
        return
    if sys.argv[1] != "diff":
        sys.exit("usage: cgstat.py total FILE | diff ROOT_A A1 A2 N ROOT_B B1 B2 [TOP]")
    ra, a1, a2, n, rb, b1, b2 = sys.argv[2:9]
    top = int(sys.argv[9]) if len(sys.argv) > 9 else 15
    n = float(n)
    fa, la = per_op(ra, a1, a2, n)
    fb, lb = per_op(rb, b1, b2, n)
    ta, tb = sum(fa.values()), sum(fb.values())
    print(f"  per operation: base {ta:.0f}, change {tb:.0f} instructions ({tb - ta:+.0f})")
    print(f"  functions whose self instructions per operation changed most (change - base):")
    d = sorted(((fb.get(k, 0) - fa.get(k, 0), k) for k in set(fa) | set(fb)), key=lambda x: -abs(x[0]))
    for delta, k in d[:top]:
        if abs(delta) < 1:
            break
        print(f"    {delta:+9.1f}  base {fa.get(k, 0):9.1f}  change {fb.get(k, 0):9.1f}  {k}")
    for label, lines in (("change", lb), ("base", la)):
        print(f"  source lines of the {label} with the most self instructions per operation, in this module:")
        mod = [(v, k) for k, v in lines.items() if k[0] and not k[0].startswith(("/", "?")) and "/go/" not in k[0] and abs(v) >= 1]
        for v, (f, l) in sorted(mod, key=lambda x: -abs(x[0]))[:top]:
            print(f"    {v:9.1f}  {f}:{l}")


if __name__ == "__main__":
    main()
