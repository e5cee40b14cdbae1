#!/usr/bin/env bash
# make bench-cluster (and the cluster section of make bench-compare): what one hop between
# clustered sentinels costs. Two forms of the same load, interleaved run by run so the shared
# machine's drift hits both alike:
#   single   one `fame sentinel` (no cluster block), the math agent and the client on it;
#   cluster  sentinels A and B clustered over the embedded NATS (mutual TLS 1.3 from a throwaway
#            stack CA made with `fame ca init` / `fame ca cluster-cert`, NATS user/password auth),
#            the math agent attached to B, the client to A: every call and reply crosses the bus
#            once (A → B → agent → B → A).
# Open security profile, at-most-once, the load is `fame bench` (add, answer checked) at 1 caller
# (sequential) and 50 callers. Prints a markdown section: both forms side by side, the cluster as
# a fraction of the single sentinel against the clustering issue's targets (≥ 60 % of the
# throughput at 50 callers; added sequential p50 ≤ 150 µs), every run, and CPU per call.
#
# Environment: BIN (bin), BENCH_D (10s), BENCH_WARMUP (2s), BENCH_CALL_TIMEOUT (5s), BENCH_REPEAT
# (3: runs per scenario and form; the median run by throughput is reported), BENCH_CLUSTER_MD
# (also write the section to this file), PROFILE (0; 1: a separate 50-caller run of the cluster
# with FAME_PPROF=true on A and B, the top of both CPU profiles appended to the section).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
D=${BENCH_D:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CALL_TIMEOUT=${BENCH_CALL_TIMEOUT:-5s}
REPEAT=${BENCH_REPEAT:-3}
MD=${BENCH_CLUSTER_MD:-}
PROFILE=${PROFILE:-0}
GO=${GO:-go}
for tool in jq curl python3 timeout; do
  command -v "$tool" >/dev/null || { echo "bench-cluster: needs $tool on PATH" >&2; exit 2; }
done

STARTED="$(date -u '+%Y-%m-%d %H:%M UTC'), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
bench_init

[[ -x $BIN/fame && -x $BIN/math-agent ]] || { echo "bench-cluster: $BIN/fame or $BIN/math-agent missing: run 'make build'" >&2; exit 2; }

# The cluster's PKI: one stack CA and one certificate for both sentinels (they are both
# 127.0.0.1), valid for server and client auth; the password is random per run.
"$BIN/fame" ca init -dir "$work/ca" >/dev/null
"$BIN/fame" ca cluster-cert -dir "$work/ca" -dns localhost,127.0.0.1 -out "$work/cluster" >/dev/null
CLUSTER_PASSWORD=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')

# metric ADDR NAME LABELS: the value of one sample of the sentinel's /metrics (0 when absent).
metric() {
  curl -fsS "http://$1/metrics" 2>/dev/null | awk -v n="$2" -v l="$3" '
    $1 == n "{" l "}" || ($1 == n && l == "") { v = $2 } END { print v + 0 }'
}

# wait_metric ADDR NAME LABELS MIN SECONDS PID: until the sample is at least MIN.
wait_metric() {
  local i
  for ((i = 0; i < $5 * 10; i++)); do
    [[ $(jq -n "$(metric "$1" "$2" "$3") >= $4") == true ]] && return 0
    kill -0 "$6" 2>/dev/null || { echo "bench-cluster: process $6 exited while waiting for $2{$3} >= $4" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-cluster: $2{$3} on $1 not >= $4 after $5 s" >&2
  return 1
}

# start_sentinel NAME [ENV...]: a sentinel on a free loopback port; sets ADDR and SPID.
start_sentinel() {
  local name=$1 port
  shift
  port=$(free_port)
  rm -f "$work/$name.addr"
  env "$@" FAME_LISTENER_HOST=127.0.0.1 FAME_LISTENER_PORT="$port" FAME_PPROF="${PPROF:-false}" \
    "$BIN/fame" sentinel -addr-file "$work/$name.addr" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
  SPID=$!
  wait_for "$work/$name.addr" ":" 20 "$SPID"
  ADDR=$(cat "$work/$name.addr")
}

# start_agent ADDR: one math agent attached to the sentinel at ADDR; sets AGENT_PID.
start_agent() {
  rm -f "$work/agent.out"
  FAME_DIRECT_ADMISSION_URL="ws://$1/fame/v1/attach/ws/downstream" MATH_LOGICAL=fame.fabric AGENT_NAME=bench \
    "$BIN/math-agent" >"$work/agent.out" 2>"$work/agent.log" &
  pids+=($!)
  AGENT_PID=$!
  wait_for "$work/agent.out" READY 30 "$AGENT_PID"
}

# start_form FORM: the fabric of one form; sets URL (the client's sentinel) and CPU (-cpu list).
start_form() {
  if [[ $1 == single ]]; then
    start_sentinel single
    start_agent "$ADDR"
    URL="ws://$ADDR/fame/v1/attach/ws/downstream"
    CPU="sentinel=$SPID,agent=$AGENT_PID"
    return
  fi
  local ports a b apid bpid i routes data=()
  # nats: the same cluster with the direct data path off (envelopes through NATS).
  [[ $1 == nats ]] && data=(FAME_CLUSTER_DATA_LISTEN=off)
  # Two route ports and two NATS client ports, all chosen now.
  ports=()
  for i in 1 2 3 4; do ports+=("$(free_port)"); done
  routes="nats-route://127.0.0.1:${ports[0]},nats-route://127.0.0.1:${ports[1]}"
  for i in 0 1; do
    rm -rf "$work/nats-$i"
    start_sentinel "s$i" FAME_NODE_ID="s$i" FAME_CLUSTER_NAME=bench \
      FAME_CLUSTER_LISTEN="127.0.0.1:${ports[i]}" FAME_CLUSTER_CLIENT_LISTEN="127.0.0.1:${ports[i + 2]}" \
      FAME_CLUSTER_ROUTES="$routes" FAME_CLUSTER_DATA_DIR="$work/nats-$i" \
      FAME_CLUSTER_TLS_CERT="$work/cluster.crt" FAME_CLUSTER_TLS_KEY="$work/cluster.key" \
      FAME_CLUSTER_TLS_CA="$work/ca/root-ca.crt" FAME_CLUSTER_USER=fame-cluster FAME_CLUSTER_PASSWORD="$CLUSTER_PASSWORD" \
      "${data[@]}"
    if [[ $i == 0 ]]; then a=$ADDR apid=$SPID; else b=$ADDR bpid=$SPID; fi
  done
  wait_metric "$a" fame_cluster_peer_transitions_total 'state="up"' 1 30 "$apid"
  wait_metric "$b" fame_cluster_peer_transitions_total 'state="up"' 1 30 "$bpid"
  if [[ $1 == cluster ]]; then # both peer links carrying envelopes before the first call
    wait_metric "$a" fame_cluster_links_total 'event="up"' 1 30 "$apid"
    wait_metric "$b" fame_cluster_links_total 'event="up"' 1 30 "$bpid"
  fi
  start_agent "$b"
  # The client's sentinel must see the replica on B before the first call.
  wait_metric "$a" fame_cluster_directory_replicas 'state="up"' 1 30 "$apid"
  URL="ws://$a/fame/v1/attach/ws/downstream"
  A_ADDR=$a B_ADDR=$b
  CPU="sentinel_a=$apid,sentinel_b=$bpid,agent=$AGENT_PID"
}

# stop_form: the agent first, while its sentinel is still there (on SIGTERM math-agent drains
# and waits for its sentinel's word; killed with its sentinel it would wait out its drain
# timeout), at most 5 s, then everything else.
stop_form() {
  local i
  kill "$AGENT_PID" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$AGENT_PID" 2>/dev/null || true
  stop_all
}

scenarios=("seq|sequential (1 caller)|-c 1" "c50|50 callers|-c 50")
forms=(single cluster nats)
limit=$(($(secs "$D") + $(secs "$WARMUP") + $(secs "$CALL_TIMEOUT") + 30))

for ((rep = 1; rep <= REPEAT; rep++)); do
  for s in "${scenarios[@]}"; do
    IFS='|' read -r name label flags <<<"$s"
    for form in "${forms[@]}"; do
      echo "== $form: $label (run $rep of $REPEAT)" >&2
      start_form "$form"
      f=$work/$form-$name-$rep
      rc=0
      # shellcheck disable=SC2086 # flags are words on purpose
      timeout --kill-after=5 "$limit" "$BIN/fame" bench -url "$URL" -d "$D" -warmup "$WARMUP" -timeout "$CALL_TIMEOUT" \
        -cpu "$CPU" -json $flags >"$f.json" 2>"$f.err" || rc=$?
      if [[ $form != single && -s $f.json ]]; then
        # Proof that the calls crossed to B: A's remote and local routing counters, and what
        # A sent on its peer link (none with the data path off).
        jq --argjson r "$(metric "$A_ADDR" fame_cluster_routed_total 'where="remote"')" \
          --argjson l "$(metric "$A_ADDR" fame_cluster_routed_total 'where="local"')" \
          --argjson k "$(metric "$A_ADDR" fame_cluster_link_envelopes_total 'result="sent"')" \
          '. + {routed_remote: $r, routed_local: $l, link_sent: $k}' "$f.json" >"$f.tmp" && mv "$f.tmp" "$f.json"
      fi
      echo "$rc" >"$f.rc"
      if [[ -s $f.json ]]; then
        jq -c '{calls_per_sec, p50_us, p99_us, error_total, stalled, cpu_us_per_call, routed_remote}' "$f.json" >&2
      else
        echo "   no result (exit $rc): $(tail -1 "$f.err")" >&2
      fi
      stop_form
    done
  done
done

# ok FILE: a usable result (not stalled, calls made, timeouts not the majority).
ok() { [[ -s $1 && $(jq -r '.stalled or .calls == 0 or (.errors.timeout // 0) > .calls' "$1") == false ]]; }
# The median run of each scenario and form (by throughput) becomes $form-$name.json.
for s in "${scenarios[@]}"; do
  IFS='|' read -r name _ <<<"$s"
  for form in "${forms[@]}"; do
    pick=$(for ((rep = 1; rep <= REPEAT; rep++)); do
      f=$work/$form-$name-$rep.json
      if ok "$f"; then echo "$(jq .calls_per_sec "$f") $rep"; else echo "-1 $rep"; fi
    done | sort -g | sed -n "$(((REPEAT + 1) / 2))p" | cut -d' ' -f2)
    cp "$work/$form-$name-$pick.json" "$work/$form-$name.json" 2>/dev/null || : >"$work/$form-$name.json"
  done
done

fmt_us() {
  jq -rn --argjson v "$1" 'if $v < 1000 then "\($v|round) µs" elif $v < 1000000 then "\($v/10|round/100) ms" else "\($v/10000|round/100) s" end'
}
verdict() { [[ $(jq -n "$1") == true ]] && echo met || echo "**missed**"; }
j() { jq -r "$2" "$work/$1.json"; }
cell() { # cell FORM NAME tput|lat
  local f=$work/$1-$2.json
  if ! ok "$f"; then echo "failed or stalled: $(tail -1 "$work/$1-$2-1.err" 2>/dev/null | cut -c1-60)"; return; fi
  case $3 in
    tput) echo "$(jq -r '.calls_per_sec|round' "$f") calls/s$(jq -r 'if .error_total > 0 then " (\(.error_total) errors)" else "" end' "$f")" ;;
    lat) echo "p50 $(fmt_us "$(jq .p50_us "$f")") · p99 $(fmt_us "$(jq .p99_us "$f")")" ;;
  esac
}

section=$work/cluster.md
{
  echo "### Cluster: one hop between sentinels"
  echo
  echo "\`make bench-cluster\` (\`scripts/bench-cluster.sh\`), $STARTED."
  echo "Single: one sentinel, the math agent and the client on it. Cluster: sentinels A and B clustered over"
  echo "the embedded NATS (mutual TLS 1.3 from the stack CA, user/password auth), the agent attached to B, the"
  echo "client to A, so every request and every reply crosses from one sentinel to the other once, on the direct"
  echo "data path (each sentinel's peer link: mutual TLS to the other, \`cluster/peerlink.go\`). NATS: the same"
  echo "cluster with \`data_listen: off\`, every envelope through NATS. Open security profile, same"
  echo "\`fame bench\` load ($WARMUP warm-up, $D measured); the forms alternate run by run; each cell is the median"
  echo "of $REPEAT run(s) by throughput. Four processes share the cores in the cluster form, three in the single one."
  echo
  echo "| scenario | single sentinel | cluster: client on A, replica on B | cluster vs single | target | |"
  echo "|---|---|---|---|---|---|"
  if ok "$work/single-c50.json" && ok "$work/cluster-c50.json"; then
    pct=$(jq -n "$(j cluster-c50 .calls_per_sec) / $(j single-c50 .calls_per_sec) * 100 | round")
    echo "| 50 callers: throughput | $(cell single c50 tput) | $(cell cluster c50 tput) | ${pct}% | ≥ 60% | $(verdict "$pct >= 60") |"
  else
    echo "| 50 callers: throughput | $(cell single c50 tput) | $(cell cluster c50 tput) | — | ≥ 60% | **missed** |"
  fi
  echo "| 50 callers: latency | $(cell single c50 lat) | $(cell cluster c50 lat) | | | |"
  if ok "$work/single-seq.json" && ok "$work/cluster-seq.json"; then
    add=$(jq -n "$(j cluster-seq .p50_us) - $(j single-seq .p50_us) | round")
    add99=$(jq -n "$(j cluster-seq .p99_us) - $(j single-seq .p99_us) | round")
    echo "| sequential: latency | $(cell single seq lat) | $(cell cluster seq lat) | p50 +$add µs · p99 +$add99 µs | added p50 ≤ 150 µs | $(verdict "$add <= 150") |"
    echo "| sequential: throughput | $(cell single seq tput) | $(cell cluster seq tput) | $(jq -n "$(j cluster-seq .calls_per_sec) / $(j single-seq .calls_per_sec) * 100 | round")% | | |"
  else
    echo "| sequential: latency | $(cell single seq lat) | $(cell cluster seq lat) | — | added p50 ≤ 150 µs | **missed** |"
  fi
  if ok "$work/single-c50.json" && ok "$work/nats-c50.json" && ok "$work/single-seq.json" && ok "$work/nats-seq.json"; then
    echo
    echo "Over NATS only (\`data_listen: off\`), same runs: 50 callers $(cell nats c50 tput)" \
      "($(jq -n "$(j nats-c50 .calls_per_sec) / $(j single-c50 .calls_per_sec) * 100 | round")% of single)," \
      "sequential $(cell nats seq lat) (p50 +$(jq -n "$(j nats-seq .p50_us) - $(j single-seq .p50_us) | round") µs)."
  fi
  echo
  echo "CPU time per call (µs; utime + stime from /proc over the measured window ÷ calls, 10 ms ticks):"
  echo
  echo "| run | client | sentinel (A) | sentinel B | agent | total |"
  echo "|---|---|---|---|---|---|"
  for s in "${scenarios[@]}"; do
    IFS='|' read -r name label _ <<<"$s"
    for form in "${forms[@]}"; do
      ok "$work/$form-$name.json" || continue
      jq -r --arg run "$form, $label" '.cpu_us_per_call // empty | def r: if . == null then "—" else round end;
        "| \($run) | \(.client | r) | \((.sentinel // .sentinel_a) | r) | \(.sentinel_b | r) | \(.agent | r) | \([.[]] | add | round) |"' "$work/$form-$name.json"
    done
  done
  echo
  echo "Every run (calls/s, p50):"
  echo
  for s in "${scenarios[@]}"; do
    IFS='|' read -r name label _ <<<"$s"
    for form in "${forms[@]}"; do
      line="- $form, $label:"
      for ((rep = 1; rep <= REPEAT; rep++)); do
        f=$work/$form-$name-$rep.json
        if [[ -s $f ]]; then
          line+=" $(jq -r '"\(.calls_per_sec|round)/s \(.p50_us|round) µs\(if .stalled then " stalled" else "" end)\(if .routed_remote then " (A routed \(.routed_remote) remote, \(.routed_local) local; \(.link_sent) on its link)" else "" end)"' "$f");"
        else
          line+=" no result;"
        fi
      done
      echo "${line%;}"
    done
  done
} >"$section"

if [[ $PROFILE == 1 ]]; then
  echo "== profiling the cluster under 50 callers (separate run, not in the table)" >&2
  PPROF=true start_form cluster
  psecs=$(secs "$D")
  "$BIN/fame" bench -url "$URL" -c 50 -d "$D" -warmup "$WARMUP" -timeout "$CALL_TIMEOUT" >"$work/prof-bench.txt" 2>&1 &
  bench_pid=$!
  pids+=("$bench_pid")
  sleep "$(secs "$WARMUP")"
  curl -fsS -o "$work/a.prof" "http://$A_ADDR/debug/pprof/profile?seconds=$psecs" &
  cpid=$!
  curl -fsS -o "$work/b.prof" "http://$B_ADDR/debug/pprof/profile?seconds=$psecs" || true
  wait "$cpid" || true
  wait "$bench_pid" || true
  stop_form
  pprof_top() { $GO tool pprof -top -nodecount=20 "$BIN/fame" "$1" 2>/dev/null | sed -n '/flat%/,$p'; }
  pprof_cum() { $GO tool pprof -top -cum -nodecount=25 "$BIN/fame" "$1" 2>/dev/null | sed -n '/flat%/,$p'; }
  {
    echo
    echo "Where the CPU goes in the cluster form under 50 callers (a separate run, \`FAME_PPROF=true\`):"
    for side in a b; do
      echo
      echo "Sentinel $(tr a-b A-B <<<"$side"), top 20 by flat time, then top 25 by cumulative time:"
      echo
      echo '```'
      if [[ -s $work/$side.prof ]]; then pprof_top "$work/$side.prof"; echo; pprof_cum "$work/$side.prof"; else echo "(no profile)"; fi
      echo '```'
    done
  } >>"$section"
fi

echo >&2
cat "$section"
[[ -n $MD ]] && cp "$section" "$MD"
exit 0
