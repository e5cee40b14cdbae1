#!/usr/bin/env bash
# make bench-instr: counts that noise moves less than wall-clock figures, with valgrind's
# callgrind (this machine has no hardware counters for `perf stat`).
#
#  1. Instructions per call of the sentinel alone: our sentinel under callgrind, a native math
#     agent and a native `fame bench` client; the counters are zeroed after a warm-up run and
#     dumped after the measured run, so they cover the measured calls (plus one client attach).
#     Open and overlay profiles, 1 and 50 callers. User-space instructions only: the kernel's
#     share (syscalls, about a third of the sentinel's CPU time) is not in them. Under
#     callgrind one thread runs at a time, so the scheduler's behaviour differs from a native
#     run; the count is still the work the code asks for.
#  2. Signatures and verifications per overlay call in each process: client, sentinel and agent
#     all under callgrind, sequential calls; the calls into what signing and verifying end in
#     (curve25519-voi's PrivateKey.Sign, verifyWithOptionsNoPanic and, for keys kept expanded,
#     verifyExpandedWithOptionsNoPanic; crypto/ed25519's signWithDom, verifyWithDom) are counted
#     from the call graph and divided by the calls made (the client's own attach is included,
#     a few operations over hundreds of calls).
#  3. The crypto floor: those operations per call × their CPU cost from security's floor
#     benchmarks (BenchmarkFloorEd25519Sign/Verify, cpu-ns/op) ÷ the cores: the most overlay
#     calls per second this machine could do if signing and verifying were all it did.
#
# Environment: BIN (bin), GO (go), INSTR_D (5s: measured duration of each run), INSTR_MD (write
# the markdown section there as well as to stdout), INSTR_JSON (write the figures as JSON there).
# Go's asynchronous preemption signals trip callgrind's signal handling, so every process under
# callgrind runs with GODEBUG=asyncpreemptoff=1.
#
# With an argument, `scripts/bench-instr.sh BASE` (make bench-instr BASE=<ref>) compares instead:
# instructions per operation of the hot-path Go benchmarks and per call of `fame sentinel`, the
# commit BASE against the working tree (scripts/bench-instr-ab.sh says how).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -gt 0 ]]; then
  exec ./scripts/bench-instr-ab.sh "$@"
fi
BIN=${BIN:-bin}
GO=${GO:-go}
D=${INSTR_D:-5s}
for tool in valgrind callgrind_control jq python3; do
  command -v "$tool" >/dev/null || { echo "bench-instr: needs $tool on PATH (apt-get install valgrind jq python3)" >&2; exit 2; }
done

# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
bench_init

CG=(valgrind --tool=callgrind --quiet)
OVERLAY="FAME_SECURITY_PROFILE=overlay FAME_ADMISSION_PROFILE=open FAME_AUTHORIZATION_PROFILE=noop"

echo "== building $BIN/" >&2
mkdir -p "$BIN"
CGO_ENABLED=0 $GO build -trimpath -o "$BIN/" ./cmd/fame ./examples/math/math-agent

# start SENTINEL_WRAP AGENT_WRAP ENV: a sentinel and a math agent, either or both under callgrind
# (wrap = "cg" or ""); sets URL, SPID, APID.
start() {
  local swrap=$1 awrap=$2 env=$3 pre=()
  rm -f "$work/addr" "$work/agent.out"
  [[ $swrap == cg ]] && pre=("${CG[@]}" "--callgrind-out-file=$work/sentinel.cg")
  # shellcheck disable=SC2086 # env is NAME=value words on purpose
  env $env GODEBUG=asyncpreemptoff=1 FAME_LISTENER_HOST=127.0.0.1 FAME_LISTENER_PORT=0 FAME_LOG_LEVEL=warn \
    "${pre[@]}" "$BIN/fame" sentinel -addr-file "$work/addr" >/dev/null 2>"$work/sentinel.log" &
  SPID=$!
  pids+=("$SPID")
  wait_for "$work/addr" ":" 60 "$SPID"
  URL="ws://$(cat "$work/addr")/fame/v1/attach/ws/downstream"
  pre=()
  [[ $awrap == cg ]] && pre=("${CG[@]}" "--callgrind-out-file=$work/agent.cg")
  # shellcheck disable=SC2086
  env $env GODEBUG=asyncpreemptoff=1 FAME_DIRECT_ADMISSION_URL=$URL MATH_LOGICAL=fame.fabric AGENT_NAME=instr \
    "${pre[@]}" "$BIN/math-agent" >"$work/agent.out" 2>"$work/agent.log" &
  APID=$!
  pids+=("$APID")
  wait_for "$work/agent.out" READY 120 "$APID"
}

# cg_stats FILE: "instructions ops_sign ops_verify" from a callgrind dump.
cg_stats() {
  python3 - "$1" <<'PY'
import re, sys
names, callee, total = {}, None, 0
calls = {"sign": 0, "verify": 0}
want = {"crypto/internal/fips140/ed25519.signWithDom": "sign", "crypto/internal/fips140/ed25519.verifyWithDom": "verify",
        "github.com/oasisprotocol/curve25519-voi/primitives/ed25519.PrivateKey.Sign": "sign",
        "github.com/oasisprotocol/curve25519-voi/primitives/ed25519.verifyWithOptionsNoPanic": "verify",
        "github.com/oasisprotocol/curve25519-voi/primitives/ed25519.verifyExpandedWithOptionsNoPanic": "verify"}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
    if m:
        if m[3] is not None:
            names[m[2]] = m[3]
        callee = names.get(m[2]) if m[1] == "cfn" else None
        continue
    if line.startswith("calls=") and callee in want:
        calls[want[callee]] += int(line.split()[0][6:])
        continue
    if line.startswith(("summary:", "totals:")):
        total = max(total, int(line.split()[1]))
print(total, calls["sign"], calls["verify"])
PY
}
newest_dump() { ls -t "$1".* 2>/dev/null | head -1; } # the last callgrind_control dump of a process

# ---- 1. instructions per call, sentinel alone ------------------------------------------------
declare -A IR
for prof in open overlay; do
  env=""
  [[ $prof == overlay ]] && env=$OVERLAY
  for c in 1 50; do
    echo "== instructions: sentinel under callgrind, $prof profile, $c caller(s), $D" >&2
    start cg "" "$env"
    # shellcheck disable=SC2086
    env $env "$BIN/fame" bench -url "$URL" -c "$c" -d 1s -warmup 0s -json >/dev/null 2>"$work/warm.err" ||
      { echo "bench-instr: warm-up failed: $(tail -1 "$work/warm.err")" >&2; exit 1; }
    callgrind_control -z "$SPID" >/dev/null
    # shellcheck disable=SC2086
    env $env "$BIN/fame" bench -url "$URL" -c "$c" -d "$D" -warmup 0s -json >"$work/run.json" 2>"$work/run.err" ||
      { echo "bench-instr: run failed: $(tail -1 "$work/run.err")" >&2; exit 1; }
    callgrind_control -d "$SPID" >/dev/null
    sleep 0.5
    read -r ir _ _ <<<"$(cg_stats "$(newest_dump "$work/sentinel.cg")")"
    calls=$(jq '.calls' "$work/run.json")
    IR[$prof-$c]=$(jq -n --argjson ir "$ir" --argjson n "$calls" '$ir / $n | round')
    echo "   $calls calls, $ir instructions: ${IR[$prof-$c]} per call" >&2
    stop_all
    rm -f "$work"/*.cg*
  done
done

# ---- 2. signatures and verifications per overlay call, every process ------------------------
echo "== crypto operations: overlay, client, sentinel and agent under callgrind, 1 caller, $D" >&2
start cg cg "$OVERLAY"
callgrind_control -z "$SPID" >/dev/null
callgrind_control -z "$APID" >/dev/null
# shellcheck disable=SC2086
env $OVERLAY GODEBUG=asyncpreemptoff=1 "${CG[@]}" --callgrind-out-file="$work/client.cg" \
  "$BIN/fame" bench -url "$URL" -c 1 -d "$D" -warmup 0s -timeout 30s -json >"$work/ops.json" 2>"$work/ops.err" ||
  { echo "bench-instr: overlay run failed: $(tail -1 "$work/ops.err")" >&2; exit 1; }
callgrind_control -d "$SPID" >/dev/null
callgrind_control -d "$APID" >/dev/null
sleep 0.5
ocalls=$(jq '.calls' "$work/ops.json")
read -r _ cs cv <<<"$(cg_stats "$work/client.cg")"
read -r _ ss sv <<<"$(cg_stats "$(newest_dump "$work/sentinel.cg")")"
read -r _ as av <<<"$(cg_stats "$(newest_dump "$work/agent.cg")")"
stop_all
per() { jq -n --argjson a "$1" --argjson n "$ocalls" '$a / $n * 100 | round / 100'; }
echo "   $ocalls calls; sign/verify: client $cs/$cv, sentinel $ss/$sv, agent $as/$av" >&2

# ---- 3. the crypto floor --------------------------------------------------------------------
echo "== crypto cost: security floor benchmarks" >&2
$GO test -run '^$' -bench 'BenchmarkFloorEd25519(Sign|Verify)$' -benchtime 3000x -count 3 ./security/ >"$work/floor.txt"
cost() { awk -v b="$1" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 1; i < NF; i++) if ($(i+1) == "cpu-ns/op") print $i }' "$work/floor.txt" | sort -g | sed -n 2p; }
sign_ns=$(cost BenchmarkFloorEd25519Sign)
verify_ns=$(cost BenchmarkFloorEd25519Verify)
cores=$(nproc)

jq -n --argjson d "$(jq -n --arg d "$D" '$d')" \
  --argjson ir_open1 "${IR[open-1]}" --argjson ir_open50 "${IR[open-50]}" \
  --argjson ir_ov1 "${IR[overlay-1]}" --argjson ir_ov50 "${IR[overlay-50]}" \
  --argjson calls "$ocalls" --argjson cs "$cs" --argjson cv "$cv" --argjson ss "$ss" --argjson sv "$sv" \
  --argjson ags "$as" --argjson agv "$av" --argjson sign_ns "$sign_ns" --argjson verify_ns "$verify_ns" --argjson cores "$cores" '
  ((($cs + $ss + $ags) / $calls)) as $signs | ((($cv + $sv + $agv) / $calls)) as $verifies |
  (($signs * $sign_ns + $verifies * $verify_ns) / 1000) as $cpu_us |
  {duration: $d,
   sentinel_instructions_per_call: {open_c1: $ir_open1, open_c50: $ir_open50, overlay_c1: $ir_ov1, overlay_c50: $ir_ov50},
   overlay_calls_counted: $calls,
   signs_per_call: {client: ($cs/$calls), sentinel: ($ss/$calls), agent: ($ags/$calls), total: $signs},
   verifies_per_call: {client: ($cv/$calls), sentinel: ($sv/$calls), agent: ($agv/$calls), total: $verifies},
   sign_cpu_ns: $sign_ns, verify_cpu_ns: $verify_ns, cores: $cores,
   crypto_cpu_us_per_call: $cpu_us, crypto_floor_us_per_call: ($cpu_us / $cores),
   crypto_floor_calls_per_sec: ($cores * 1e6 / $cpu_us)}' >"$work/instr.json"
[[ -n ${INSTR_JSON:-} ]] && cp "$work/instr.json" "$INSTR_JSON"

r2() { jq -r "$1 * 100 | round / 100" "$work/instr.json"; }
md=$work/instr.md
{
  echo "### Instructions, crypto operations and the crypto floor (\`make bench-instr\`)"
  echo
  echo "Sentinel alone under callgrind (user-space instructions per call; native client and agent; $D per run):"
  echo
  echo "| profile | 1 caller | 50 callers |"
  echo "|---|---|---|"
  echo "| open | ${IR[open-1]} | ${IR[open-50]} |"
  echo "| overlay | ${IR[overlay-1]} | ${IR[overlay-50]} |"
  echo
  echo "Overlay, $ocalls sequential calls with all three processes under callgrind (calls into ed25519 sign / verify):"
  echo
  echo "| per call | client | sentinel | agent | total |"
  echo "|---|---|---|---|---|"
  echo "| signatures | $(per "$cs") | $(per "$ss") | $(per "$as") | $(r2 .signs_per_call.total) |"
  echo "| verifications | $(per "$cv") | $(per "$sv") | $(per "$av") | $(r2 .verifies_per_call.total) |"
  echo
  echo "Crypto floor: $(r2 .signs_per_call.total) signatures × $(r2 '.sign_cpu_ns/1000') µs + $(r2 .verifies_per_call.total) verifications × $(r2 '.verify_cpu_ns/1000') µs (BenchmarkFloorEd25519Sign/Verify, median cpu-ns/op of 3)"
  echo "= $(r2 .crypto_cpu_us_per_call) µs of CPU per call; ÷ $cores cores = **$(r2 .crypto_floor_us_per_call) µs per call, at most $(jq -r '.crypto_floor_calls_per_sec|round' "$work/instr.json") overlay calls/s** if signing and verifying were all the machine did."
} >"$md"
[[ -n ${INSTR_MD:-} ]] && cp "$md" "$INSTR_MD"
cat "$md"
