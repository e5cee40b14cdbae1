#!/usr/bin/env bash
# make bench-fullstack: the two figures of the latency issue that bench-compare's rows (our Go
# client and agent in front of every sentinel) do not give, in one run:
#
#  1. Full stack against full stack: the Go client (`fame bench`), `fame sentinel` and the Go
#     math agent against the reference's TS client (interop/ts-bench.mjs, @naylence/agent-sdk),
#     TS sentinel (interop/ts-sentinel.mjs) and TS agent (interop/ts-agent.mjs), open profile,
#     FULLSTACK_CALLERS (32) closed-loop callers calling add({x:3,y:4}) on one client node. The
#     two stacks alternate BENCH_REPEAT times (3); the median run of each (by calls/s) is shown.
#  2. Channel encryption: our Go stack at 50 callers with every process in the overlay profile
#     and FAME_DEFAULT_ENCRYPTION_LEVEL=channel (every request and reply sealed end to end over a
#     SecureOpen'd channel, and signed), beside the overlay profile alone in the same run, and
#     the compose stack's default: strict-overlay + channel + welcome admission (its oauth2,
#     welcome and CA services started on loopback; FULLSTACK_STRICT=0 skips it).
#
# Prints a markdown section (BENCHMARKS.md keeps it under "Full stack and channel encryption").
# Environment: BIN (bin), GO (go), BENCH_D (10s), BENCH_WARMUP (2s), BENCH_REPEAT (3),
# FULLSTACK_CALLERS (32), BENCH_CALL_TIMEOUT (5s).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
GO=${GO:-go}
D=${BENCH_D:-10s}
WARMUP=${BENCH_WARMUP:-2s}
REPEAT=${BENCH_REPEAT:-3}
C=${FULLSTACK_CALLERS:-32}
CALL_TIMEOUT=${BENCH_CALL_TIMEOUT:-5s}
for tool in node jq python3; do
  command -v "$tool" >/dev/null || { echo "bench-fullstack: needs $tool on PATH" >&2; exit 2; }
done

# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
bench_init

echo "== building $BIN/" >&2
mkdir -p "$BIN"
CGO_ENABLED=0 $GO build -trimpath -o "$BIN/" ./cmd/fame ./examples/math/math-agent
if [[ ! -d interop/node_modules ]]; then
  echo "== installing the reference TS peers (npm ci)" >&2
  (cd interop && npm ci --no-audit --no-fund >&2)
fi
limit=$((($(ms "$D") + $(ms "$WARMUP") + $(ms "$CALL_TIMEOUT")) / 1000 + 60))

# start SIDE ENV...: a sentinel and one math agent of SIDE (go or ts); sets URL.
start() {
  local side=$1 port
  shift
  port=$(free_port)
  rm -f "$work"/*.out
  URL="ws://127.0.0.1:$port/fame/v1/attach/ws/downstream"
  if [[ $side == go ]]; then
    env "$@" FAME_LISTENER_HOST=127.0.0.1 FAME_LISTENER_PORT="$port" "$BIN/fame" sentinel \
      >"$work/sentinel.out" 2>"$work/sentinel.log" &
    pids+=($!)
    for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    env "$@" FAME_DIRECT_ADMISSION_URL="$URL" MATH_LOGICAL=fame.fabric AGENT_NAME=bench \
      "$BIN/math-agent" >"$work/agent.out" 2>"$work/agent.log" &
  else
    env "$@" FAME_LISTENER_HOST=127.0.0.1 FAME_LISTENER_PORT="$port" FAME_LOG_LEVEL=warning \
      node interop/ts-sentinel.mjs >"$work/sentinel.out" 2>"$work/sentinel.log" &
    pids+=($!)
    wait_for "$work/sentinel.out" READY 30 "${pids[-1]}"
    env "$@" FAME_DIRECT_ADMISSION_URL="$URL" AGENT_NAME=bench FAME_LOG_LEVEL=warning \
      node interop/ts-agent.mjs >"$work/agent.out" 2>"$work/agent.log" &
  fi
  pids+=($!)
  wait_for "$work/agent.out" READY 30 "${pids[-1]}"
}

# client SIDE CALLERS OUT ENV...: the SIDE client's closed-loop run; writes {calls_per_sec,
# p50_us, p99_us, errors} to OUT.
client() {
  local side=$1 callers=$2 out=$3 rc=0
  shift 3
  if [[ $side == go ]]; then
    timeout --kill-after=5 "$limit" env "$@" "$BIN/fame" bench -url "$URL" -c "$callers" -d "$D" \
      -warmup "$WARMUP" -timeout "$CALL_TIMEOUT" -json >"$out.raw" 2>"$out.err" || rc=$?
    [[ -s $out.raw ]] && jq -c '{calls_per_sec, p50_us, p99_us, errors: .error_total}' "$out.raw" >"$out"
  else
    timeout --kill-after=5 "$limit" env "$@" FAME_DIRECT_ADMISSION_URL="$URL" FAME_LOG_LEVEL=warning \
      CALLERS="$callers" DURATION_MS="$(ms "$D")" WARMUP_MS="$(ms "$WARMUP")" CALL_TIMEOUT_MS="$(ms "$CALL_TIMEOUT")" \
      node interop/ts-bench.mjs >"$out.raw" 2>"$out.err" || rc=$?
    [[ -s $out.raw ]] && jq -c '{calls_per_sec, p50_us, p99_us, errors: (.errors + .wrong)}' "$out.raw" >"$out"
  fi
  [[ -s $out ]] || { echo "bench-fullstack: $side client failed (exit $rc): $(tail -3 "$out.err")" >&2; echo '{"calls_per_sec":0,"p50_us":null,"p99_us":null,"errors":-1}' >"$out"; }
  echo "   $side: $(cat "$out")" >&2
}

# median FILES...: the run with the median calls/s.
median() {
  for f in "$@"; do echo "$(jq .calls_per_sec "$f") $f"; done | sort -g | sed -n "$((($# + 1) / 2))p" | cut -d' ' -f2
}

for ((rep = 1; rep <= REPEAT; rep++)); do
  for side in go ts; do
    echo "== full stack, $side, $C callers (run $rep of $REPEAT)" >&2
    start "$side" FAME_SECURITY_PROFILE=open
    client "$side" "$C" "$work/full-$side-$rep.json"
    stop_all
  done
done
OVERLAY=(FAME_SECURITY_PROFILE=overlay FAME_ADMISSION_PROFILE=open FAME_AUTHORIZATION_PROFILE=noop)
for ((rep = 1; rep <= REPEAT; rep++)); do
  for enc in plaintext channel; do
    echo "== overlay, encryption $enc, 50 callers (run $rep of $REPEAT)" >&2
    start go "${OVERLAY[@]}" FAME_DEFAULT_ENCRYPTION_LEVEL="$enc"
    client go 50 "$work/enc-$enc-$rep.json" "${OVERLAY[@]}" FAME_DEFAULT_ENCRYPTION_LEVEL="$enc"
    stop_all
  done
done

# The strict form: strict-overlay + channel encryption + welcome admission, as the compose
# stack's default profile, with its services on loopback: a throwaway stack CA (`fame ca init`),
# HTTPS certificates from it, `fame oauth2` (two clients: the replicas' and the client's),
# `fame welcome` (grants as compose/env/welcome.env) and `fame ca`. Each node gets its bearer
# token from oauth2, is placed by welcome and certified by the CA before it attaches; the
# sentinel checks every certificate chain and signature. The sentinel serves plain ws:// like
# the other forms, so the figures differ by the security profile alone.
strict_pki() {
  "$BIN/fame" ca init -dir "$work/ca" >/dev/null 2>&1
  "$BIN/fame" ca server-cert -dir "$work/ca" -dns "localhost,127.0.0.1" -out "$work/tls" >/dev/null
  ROOT=$work/ca/root-ca.crt
  SP=$(free_port) OP=$(free_port) WP=$(free_port) CP=$(free_port)
  RS=s-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n') CS=s-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  STRICT=(FAME_SECURITY_PROFILE=strict-overlay FAME_DEFAULT_ENCRYPTION_LEVEL=channel FAME_ADMISSION_PROFILE=welcome
    FAME_STICKINESS_LEVEL=strict FAME_JWT_TRUSTED_ISSUER=https://welcome/fame/welcome FAME_JWT_AUDIENCE=fame.fabric
    FAME_JWKS_URL="https://127.0.0.1:$WP/fame/welcome/.well-known/jwks.json" FAME_CA_CERTS="$ROOT" SSL_CERT_FILE="$ROOT"
    FAME_ADMISSION_SERVICE_URL="https://127.0.0.1:$WP/fame/v1/welcome/hello" FAME_ADMISSION_TOKEN_URL="https://127.0.0.1:$OP/oauth/token")
}

# up URL PID: until URL answers over HTTPS (the stack CA), at most 30 s.
up() {
  local i
  for ((i = 0; i < 300; i++)); do
    "$BIN/fame" healthcheck -q -ca "$ROOT" "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "bench-fullstack: process $2 exited before $1 answered" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-fullstack: $1 did not answer within 30 s" >&2
  return 1
}

start_strict() {
  local tls=(FAME_TLS_CERT_FILE="$work/tls.crt" FAME_TLS_KEY_FILE="$work/tls.key" SSL_CERT_FILE="$ROOT")
  env "${tls[@]}" FAME_APP_HOST=127.0.0.1 FAME_APP_PORT="$CP" FAME_CA_DIR="$work/ca" FAME_CA_CERTS="$ROOT" FAME_CA_TRUSTED_ISSUER=https://welcome/fame/welcome \
    FAME_CA_JWKS_URL="https://127.0.0.1:$WP/fame/welcome/.well-known/jwks.json" "$BIN/fame" ca >"$work/ca.log" 2>&1 &
  pids+=($!)
  env "${tls[@]}" APP_HOST=127.0.0.1 APP_PORT="$OP" FAME_JWT_ISSUER="https://127.0.0.1:$OP" FAME_JWT_AUDIENCE=fame.fabric \
    FAME_JWT_ALLOWED_SCOPES=node.connect FAME_OAUTH2_CLIENTS="math-replicas:$RS,math-client:$CS" "$BIN/fame" oauth2 >"$work/oauth2.log" 2>&1 &
  pids+=($!)
  up "https://127.0.0.1:$OP/healthz" "${pids[-1]}"
  env "${tls[@]}" FAME_APP_HOST=127.0.0.1 FAME_APP_PORT="$WP" FAME_WELCOME_TARGET_SYSTEM_ID=Cb8WVCC4ML5RsFM \
    FAME_WELCOME_ATTACH_URL="ws://127.0.0.1:$SP/fame/v1/attach/ws/downstream" FAME_CA_SERVICE_URL="https://127.0.0.1:$CP/fame/v1/ca" \
    FAME_WELCOME_ISSUER=https://welcome/fame/welcome FAME_JWT_TRUSTED_ISSUER="https://127.0.0.1:$OP" FAME_JWT_AUDIENCE=fame.fabric \
    FAME_WELCOME_GRANTS="sub=math-replicas system_ids=math-replica* logicals=*.fame.fabric; sub=math-client system_ids=*" \
    "$BIN/fame" welcome >"$work/welcome.log" 2>&1 &
  pids+=($!)
  up "https://127.0.0.1:$WP/healthz" "${pids[-1]}"
  up "https://127.0.0.1:$CP/fame/v1/ca/health" "${pids[-3]}"
  URL="ws://127.0.0.1:$SP/fame/v1/attach/ws/downstream"
  env "${STRICT[@]}" FAME_NODE_ID=Cb8WVCC4ML5RsFM FAME_LISTENER_HOST=127.0.0.1 FAME_LISTENER_PORT="$SP" "$BIN/fame" sentinel \
    >"$work/sentinel.out" 2>"$work/sentinel.log" &
  pids+=($!)
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$SP") 2>/dev/null && break; sleep 0.1; done
  env "${STRICT[@]}" FAME_NODE_ID=math-replica1 MATH_LOGICAL='*.fame.fabric' FAME_REQUESTED_LOGICALS='*.fame.fabric' AGENT_NAME=bench \
    FAME_ADMISSION_CLIENT_ID=math-replicas FAME_ADMISSION_CLIENT_SECRET="$RS" "$BIN/math-agent" >"$work/agent.out" 2>"$work/agent.log" &
  pids+=($!)
  wait_for "$work/agent.out" READY 30 "${pids[-1]}"
}

if [[ ${FULLSTACK_STRICT:-1} == 1 ]]; then
  strict_pki
  for ((rep = 1; rep <= REPEAT; rep++)); do
    echo "== strict-overlay + channel + welcome admission, 50 callers (run $rep of $REPEAT)" >&2
    start_strict
    client go 50 "$work/enc-strict-$rep.json" "${STRICT[@]}" FAME_ADMISSION_CLIENT_ID=math-client FAME_ADMISSION_CLIENT_SECRET="$CS"
    stop_all
  done
fi

files() { local p=$1; for ((rep = 1; rep <= REPEAT; rep++)); do echo "$work/$p-$rep.json"; done; }
# shellcheck disable=SC2046 # one file name per word
gf=$(median $(files full-go)) tf=$(median $(files full-ts)) of=$(median $(files enc-plaintext)) cf=$(median $(files enc-channel))
fmt_us() { jq -r 'if . == null then "—" elif . >= 1000 then "\(. / 10 | round / 100) ms" else "\(round) µs" end' <<<"$1"; }
row() { echo "$(jq '.calls_per_sec | round' "$1") calls/s · p50 $(fmt_us "$(jq .p50_us "$1")") · p99 $(fmt_us "$(jq .p99_us "$1")") · errors $(jq .errors "$1")"; }
runs() { for f in $(files "$1"); do jq -r '.calls_per_sec | round' "$f"; done | paste -sd' ' | sed 's/ /, /g'; }
ratio=$(jq -n --slurpfile g "$gf" --slurpfile t "$tf" 'if $t[0].calls_per_sec > 0 then ($g[0].calls_per_sec / $t[0].calls_per_sec * 10 | round / 10) else null end')
enc_cost=$(jq -n --slurpfile o "$of" --slurpfile c "$cf" 'if $o[0].calls_per_sec > 0 then (100 - $c[0].calls_per_sec / $o[0].calls_per_sec * 100 | round) else null end')
strict_row() {
  [[ -s $work/enc-strict-1.json ]] || return 0
  # shellcheck disable=SC2046
  sf=$(median $(files enc-strict))
  echo "| strict-overlay + channel, welcome admission (the compose stack's default profile; oauth2, welcome and CA on loopback) | $(row "$sf") | $(runs enc-strict) |"
}
strict_note() {
  if [[ ! -s $work/enc-strict-1.json ]]; then
    echo " Strict-overlay was not run (FULLSTACK_STRICT=0)."
    return
  fi
  local sf
  # shellcheck disable=SC2046
  sf=$(median $(files enc-strict))
  echo " Strict-overlay + channel does $(jq -n --slurpfile s "$sf" --slurpfile c "$cf" 'if $c[0].calls_per_sec > 0 then ($s[0].calls_per_sec / $c[0].calls_per_sec * 100 | round) else null end') % of overlay + channel's calls"
  echo "(certificate chains are checked when a key is announced, not per call; admission happens once per node)."
}
verdict=missed
[[ $ratio != null ]] && [[ $(jq -n "$ratio >= 30") == true ]] && verdict=met

cat <<EOF
### Full stack and channel encryption (\`make bench-fullstack\`)

$(date -u '+%Y-%m-%d %H:%M UTC'); load average before: $(cut -d' ' -f1-3 /proc/loadavg); ${D} measured after ${WARMUP}, median of ${REPEAT} alternated runs (\`scripts/bench-fullstack.sh\`).

| stack | ${C} callers, open profile | runs (calls/s) |
|---|---|---|
| Go client + \`fame sentinel\` + Go math agent | $(row "$gf") | $(runs full-go) |
| TS client + TS sentinel + TS agent (the reference, @naylence/runtime) | $(row "$tf") | $(runs full-ts) |
| full Go stack ÷ full TS stack | **${ratio}×** (target ≥ 30×: ${verdict}) | |

| our Go stack, 50 callers, every process in the overlay profile | | runs (calls/s) |
|---|---|---|
| signed (overlay) | $(row "$of") | $(runs enc-plaintext) |
| signed and channel-encrypted (FAME_DEFAULT_ENCRYPTION_LEVEL=channel) | $(row "$cf") | $(runs enc-channel) |
$(strict_row)

Channel encryption costs ${enc_cost} % of the overlay throughput here.$(strict_note)
EOF
