#!/usr/bin/env bash
# bench-instr-ab.sh BASE [CHANGE] — instructions per operation, a base commit against the working
# tree (or against the commit CHANGE),
# counted by valgrind's callgrind: a cost figure that the noise of a shared machine does not
# move (wall-clock A/B runs, ../shared/tools/bench-ab.sh, swing by more than a few per cent here
# and perf has no hardware counters). Run as `scripts/bench-instr.sh BASE` or
# `make bench-instr BASE=<ref>`.
#
# 1. Go benchmarks of the hot paths (INSTR_BENCH: sentinel BenchmarkDispatchPoolSticky,
#    BenchmarkDispatchReply, BenchmarkDispatchExact; node BenchmarkCallRoundTrip). The test
#    binary of each tree runs under callgrind twice, with -test.benchtime N1x and N2x; the
#    instructions per operation are (I(N2) - I(N1)) / (N2 - N1), so what a run does once (process
#    start, runtime init, the benchmark's setup, the b.Loop ramp-up, exit) cancels. Repeated
#    INSTR_ROUNDS times (base and change alternated) to show the spread. A benchmark missing at
#    the base is reported and skipped. Beside the whole process's count, the self instructions of
#    this module's own functions (github.com/fame-go/fame/...; the runtime, allocator, sync.Pool
#    and standard library left out): the sentinel benchmarks hand envelopes to a queue-writer
#    goroutine whose turns (and so how many buffers the pool must allocate) follow the wall clock
#    even with one P, which moves the whole-process figure by a few per cent between runs; the
#    module's own code is what a change to it adds, and moves far less. Measured here (5 rounds):
#    whole process ±2–5 % for the sentinel benchmarks (allocs/op flip between 1 and 3 with the
#    writer's turns), ±0.3 % for BenchmarkCallRoundTrip and ±1.2 % per sentinel call; this
#    module's code ±0.6 % at most.
# 2. Whole call (INSTR_WHOLE=1, default): `fame sentinel` of each tree alone under callgrind,
#    a native math agent and `fame bench -c 1` of the same tree; the counters are zeroed before and
#    dumped after a run of INSTR_WHOLE_D1 and one of INSTR_WHOLE_D2 seconds, and the instructions
#    per call are the difference of the two dumps over the difference of the calls made (the
#    client's attach and the idle time between runs cancel).
#
# Runtime settings for every process under callgrind, and why:
#  - GOMAXPROCS=1: valgrind runs one thread at a time anyway; with more Ps, idle Ms spin in the
#    scheduler looking for work for as long as the wall clock lets them, and that spinning is
#    counted. With one P the goroutine hand-offs (the sentinel's queue writer, the node's
#    reader) happen at the same points in every run.
#  - GOGC=off: a GC cycle starts when the heap has grown by GOGC %, so whether the last cycle falls
#    inside the N1 or the N2 run is a step of a whole cycle's instructions; the figure is the
#    mutator's own work (allocation included; B/op and allocs/op are printed beside it as the GC
#    pressure). The heaps of these runs stay small (tens of MB). INSTR_GOGC overrides it.
#  - GODEBUG=asyncpreemptoff=1: Go's preemption signals trip callgrind's signal handling.
# The sentinel benchmarks push into a send queue that a goroutine drains (drainQueue); with one P
# that goroutine runs seldom, so N2 must stay below the per-sender queue share (about 8,000 of
# these envelopes) or the run measures refusals: a run whose output says "envelope refused" fails.
#
# Environment: GO (go), INSTR_ROUNDS (3), INSTR_BENCH ("sentinel:BenchmarkDispatchPoolSticky
# sentinel:BenchmarkDispatchReply sentinel:BenchmarkDispatchExact node:BenchmarkCallRoundTrip"),
# INSTR_N_sentinel ("2000 6000"), INSTR_N_node ("200 600"), INSTR_WHOLE (1), INSTR_WHOLE_D1 (2),
# INSTR_WHOLE_D2 (6), INSTR_GOGC (off), INSTR_ANNOTATE (1: for a benchmark whose change costs
# more than INSTR_LIMIT % (3) over the base, print the functions and source lines that differ),
# INSTR_KEEP (a directory to keep the callgrind files in).
set -euo pipefail
BASE=${1:?usage: bench-instr-ab.sh BASE [CHANGE]}
CHANGE=${2:-}
GO=${GO:-go}
ROUNDS=${INSTR_ROUNDS:-3}
BENCHES=${INSTR_BENCH:-sentinel:BenchmarkDispatchPoolSticky sentinel:BenchmarkDispatchReply sentinel:BenchmarkDispatchExact node:BenchmarkCallRoundTrip}
N_sentinel=${INSTR_N_sentinel:-2000 6000}
N_node=${INSTR_N_node:-200 600}
WHOLE=${INSTR_WHOLE:-1}
WD1=${INSTR_WHOLE_D1:-2}
WD2=${INSTR_WHOLE_D2:-6}
GOGC_RUN=${INSTR_GOGC:-off}
ANNOTATE=${INSTR_ANNOTATE:-1}
LIMIT=${INSTR_LIMIT:-3}
root=$(git rev-parse --show-toplevel)
cd "$root"
for tool in valgrind callgrind_control jq python3; do
  command -v "$tool" >/dev/null || { echo "bench-instr: needs $tool on PATH (apt-get install valgrind jq python3)" >&2; exit 2; }
done
base_rev=$(git rev-parse --short "$BASE^{commit}") || { echo "bench-instr: no commit $BASE" >&2; exit 2; }
change_desc="working tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ', modified'))"
if [[ -n $CHANGE ]]; then
  change_rev=$(git rev-parse --short "$CHANGE^{commit}") || { echo "bench-instr: no commit $CHANGE" >&2; exit 2; }
  change_desc="$CHANGE ($change_rev)"
fi
MODULE=$(cd "$root" && $GO list -m)

# shellcheck source=bench-lib.sh
source "$root/scripts/bench-lib.sh"
work=$(mktemp -d)
pids=()
cleanup() {
  stop_all
  [[ -n ${INSTR_KEEP:-} ]] && { mkdir -p "$INSTR_KEEP"; cp -r "$work"/cg "$INSTR_KEEP"/ 2>/dev/null || true; }
  git worktree remove --force "$work/base" >/dev/null 2>&1 || true
  git worktree remove --force "$work/changetree" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/cg"
cgstat() { python3 "$root/scripts/cgstat.py" "$@"; }
RUNENV=(env GOMAXPROCS=1 GOGC="$GOGC_RUN" GODEBUG=asyncpreemptoff=1)
CG=(valgrind --tool=callgrind --quiet)

echo "== building the base ($BASE = $base_rev) and the change ($change_desc)" >&2
git worktree add --detach "$work/base" "$base_rev" >/dev/null 2>&1
declare -A TREE=([base]="$work/base" [change]="$root")
if [[ -n $CHANGE ]]; then
  git worktree add --detach "$work/changetree" "$change_rev" >/dev/null 2>&1
  TREE[change]=$work/changetree
fi
pkgs=$(for b in $BENCHES; do echo "${b%%:*}"; done | sort -u)
for t in base change; do
  mkdir -p "$work/$t"
  for p in $pkgs; do
    (cd "${TREE[$t]}" && $GO test -c -o "$work/$t/$p.test" "./$p/") ||
      { echo "bench-instr: the $t's ./$p/ test binary does not build" >&2; exit 1; }
  done
  if [[ $WHOLE == 1 ]]; then
    (cd "${TREE[$t]}" && CGO_ENABLED=0 $GO build -o "$work/$t/" ./cmd/fame ./examples/math/math-agent) ||
      { echo "bench-instr: the $t's fame / math-agent do not build" >&2; exit 1; }
  fi
done

# ---- 1. Go benchmarks ------------------------------------------------------------------------
# run_bench TREE PKG NAME N ROUND: one callgrind run; prints "instructions module_instructions B/op allocs/op".
run_bench() {
  local t=$1 p=$2 name=$3 n=$4 r=$5 out
  out=$work/cg/$t.$name.$n.$r
  (cd "${TREE[$t]}/$p" && "${RUNENV[@]}" "${CG[@]}" --callgrind-out-file="$out.cg" "$work/$t/$p.test" \
    -test.run '^$' -test.bench "^$name\$" -test.benchtime "${n}x" -test.count 1 -test.benchmem >"$out.log" 2>&1) ||
    { echo "bench-instr: $t $name ${n}x failed:" >&2; tail -5 "$out.log" >&2; return 1; }
  if grep -q "envelope refused" "$out.log"; then
    echo "bench-instr: $t $name ${n}x: the send queue refused envelopes (the run measured refusals; lower INSTR_N_$p)" >&2
    return 1
  fi
  local line
  line=$(grep -E "^$name(-[0-9]+)?[[:space:]]" "$out.log" | tail -1)
  [[ -n $line ]] || { echo "bench-instr: $t $name ${n}x printed no result" >&2; tail -5 "$out.log" >&2; return 1; }
  echo "$(cgstat total "$out.cg" "$MODULE/") $(awk '{for(i=2;i<=NF;i++){if($i=="B/op")b=$(i-1);if($i=="allocs/op")a=$(i-1)}} END{print b+0, a+0}' <<<"$line")"
}

: >"$work/results" # tree bench round per_op module_per_op B/op allocs/op
declare -A SKIP
for b in $BENCHES; do
  p=${b%%:*} name=${b#*:}
  for t in base change; do
    if ! (cd "${TREE[$t]}/$p" && "$work/$t/$p.test" -test.list "^$name\$") | grep -qx "$name"; then
      SKIP[$name]="not in the $t ($p)"
    fi
  done
done
for r in $(seq 1 "$ROUNDS"); do
  for b in $BENCHES; do
    p=${b%%:*} name=${b#*:}
    [[ -n ${SKIP[$name]:-} ]] && continue
    nv="N_$p"
    read -r n1 n2 <<<"${!nv}"
    for t in base change; do
      echo "== round $r/$ROUNDS: $t $name (${n1}x, ${n2}x)" >&2
      res1=$(run_bench "$t" "$p" "$name" "$n1" "$r") || exit 1
      res2=$(run_bench "$t" "$p" "$name" "$n2" "$r") || exit 1
      read -r i1 m1 _ _ <<<"$res1"
      read -r i2 m2 bop aop <<<"$res2"
      per=$(python3 -c "print(($i2 - $i1) / ($n2 - $n1))")
      mper=$(python3 -c "print(($m2 - $m1) / ($n2 - $n1))")
      echo "   $i1 / $i2 instructions: $per per op ($mper in $MODULE), $bop B/op, $aop allocs/op" >&2
      echo "$t $name $r $per $mper $bop $aop" >>"$work/results"
    done
  done
done

# ---- 2. whole call: the sentinel alone under callgrind ----------------------------------------
newest_dump() { ls -t "$1".* 2>/dev/null | head -1; }
whole_fail=""
if [[ $WHOLE == 1 ]]; then
  for r in $(seq 1 "$ROUNDS"); do
    for t in base change; do
      echo "== round $r/$ROUNDS: $t whole call, fame sentinel under callgrind (${WD1}s, ${WD2}s of fame bench -c 1)" >&2
      bin=$work/$t cgf=$work/cg/$t.sentinel.$r.cg
      rm -f "$work/addr" "$work/agent.out"
      "${RUNENV[@]}" FAME_LISTENER_HOST=127.0.0.1 FAME_LISTENER_PORT=0 FAME_LOG_LEVEL=warning \
        "${CG[@]}" --callgrind-out-file="$cgf" "$bin/fame" sentinel -addr-file "$work/addr" >/dev/null 2>"$work/sentinel.log" &
      spid=$!
      pids+=("$spid")
      wait_for "$work/addr" ":" 120 "$spid" || { whole_fail="the $t sentinel did not start"; stop_all; break 2; }
      url="ws://$(cat "$work/addr")/fame/v1/attach/ws/downstream"
      FAME_DIRECT_ADMISSION_URL=$url MATH_LOGICAL=fame.fabric AGENT_NAME=instr "$bin/math-agent" >"$work/agent.out" 2>"$work/agent.log" &
      pids+=("$!")
      wait_for "$work/agent.out" READY 120 "$!" || { whole_fail="the $t math agent did not attach"; stop_all; break 2; }
      "$bin/fame" bench -url "$url" -c 1 -d 2s -warmup 0s -json >/dev/null 2>"$work/warm.err" ||
        { whole_fail="the $t warm-up failed: $(tail -1 "$work/warm.err")"; stop_all; break 2; }
      vals=()
      for d in "$WD1" "$WD2"; do
        callgrind_control -z "$spid" >/dev/null 2>&1
        "$bin/fame" bench -url "$url" -c 1 -d "${d}s" -warmup 0s -json >"$work/run.json" 2>"$work/run.err" ||
          { whole_fail="the $t ${d}s run failed: $(tail -1 "$work/run.err")"; stop_all; break 3; }
        callgrind_control -d "$spid" >/dev/null 2>&1
        sleep 0.3
        f=$(newest_dump "$cgf")
        mv "$f" "$work/cg/$t.sentinel.$d.$r.cg"
        vals+=($(cgstat total "$work/cg/$t.sentinel.$d.$r.cg" "$MODULE/") "$(jq '.calls + (.error_total // 0)' "$work/run.json")")
      done
      stop_all
      rm -f "$cgf"*
      # vals: instructions, module instructions, calls, for each of the two runs
      per=$(python3 -c "print((${vals[3]} - ${vals[0]}) / (${vals[5]} - ${vals[2]}))")
      mper=$(python3 -c "print((${vals[4]} - ${vals[1]}) / (${vals[5]} - ${vals[2]}))")
      echo "   calls ${vals[2]} / ${vals[5]}, instructions ${vals[0]} / ${vals[3]}: $per per call ($mper in $MODULE)" >&2
      echo "$t whole-call $r $per $mper 0 0" >>"$work/results"
    done
  done
fi

# ---- the table -----------------------------------------------------------------------------
echo
echo "Instructions per operation (callgrind, GOMAXPROCS=1 GOGC=$GOGC_RUN; difference of two runs; $ROUNDS rounds)"
echo "base = $BASE ($base_rev), change = $change_desc"
echo
python3 - "$work/results" "$LIMIT" "$BENCHES" "$WHOLE" <<'PY' | tee "$work/table"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
limit = float(sys.argv[2])
order = [b.split(":", 1)[1] for b in sys.argv[3].split()] + (["whole-call"] if sys.argv[4] == "1" else [])

def col(rs, i):
    v = [float(r[i]) for r in rs]
    return statistics.median(v), min(v), max(v)

def ratio(b, c):
    # ratio of the medians; in brackets the extremes: lowest change over highest base, highest
    # change over lowest base
    worst, best = c[2] / b[1], c[1] / b[2]
    verdict = "within" if worst <= 1 + limit / 100 else ("over" if best > 1 + limit / 100 else "unclear")
    return f"{c[0] / b[0]:.3f} ({best:.3f}–{worst:.3f}) {verdict}"

print("| benchmark | base instr/op | change instr/op | change / base | base, this module's code | change, this module's code | change / base | B/op base → change | allocs/op base → change |")
print("|---|---|---|---|---|---|---|---|---|")
for name in order:
    got = {t: [r for r in rows if r[0] == t and r[1] == name] for t in ("base", "change")}
    if not got["base"] or not got["change"]:
        continue
    a = {t: col(rs, 3) for t, rs in got.items()}
    m = {t: col(rs, 4) for t, rs in got.items()}
    fmt = lambda x: f"{x[0]:.0f} ({x[1]:.0f}–{x[2]:.0f})"
    if name == "whole-call":
        label, mem, al = "whole call: `fame sentinel`, per call of `fame bench -c 1`", "—", "—"
    else:
        label = name
        mem = f"{statistics.median(float(r[5]) for r in got['base']):.0f} → {statistics.median(float(r[5]) for r in got['change']):.0f}"
        al = f"{statistics.median(float(r[6]) for r in got['base']):.0f} → {statistics.median(float(r[6]) for r in got['change']):.0f}"
    print(f"| {label} | {fmt(a['base'])} | {fmt(a['change'])} | {ratio(a['base'], a['change'])} "
          f"| {fmt(m['base'])} | {fmt(m['change'])} | {ratio(m['base'], m['change'])} | {mem} | {al} |")
PY
for name in "${!SKIP[@]}"; do echo "- $name: skipped, ${SKIP[$name]}"; done
[[ -n $whole_fail ]] && echo "- whole call: not measured, $whole_fail"
echo
echo "(instr/op: median of the rounds, in brackets lowest–highest. change / base: ratio of the medians; in brackets"
echo " lowest change over highest base and highest change over lowest base; 'within' when even the highest is at"
echo " most 1 + $LIMIT %, 'over' when even the lowest is above, 'unclear' between. This module's code: self"
echo " instructions of the functions of $MODULE/..., runtime and standard library left out.)"

# ---- where: functions and lines, for a benchmark over the limit -------------------------------
if [[ $ANNOTATE == 1 ]]; then
  for b in $BENCHES; do
    p=${b%%:*} name=${b#*:}
    [[ -n ${SKIP[$name]:-} ]] && continue
    grep -q "^| $name | .*\(over\|unclear\)" "$work/table" || continue
    nv="N_$p"
    read -r n1 n2 <<<"${!nv}"
    echo
    echo "== $name: where the change differs from the base (round 1, self instructions per op)"
    cgstat diff "${TREE[base]}" "$work/cg/base.$name.$n1.1.cg" "$work/cg/base.$name.$n2.1.cg" "$((n2 - n1))" \
      "${TREE[change]}" "$work/cg/change.$name.$n1.1.cg" "$work/cg/change.$name.$n2.1.cg" 20 "$MODULE/"
  done
fi
