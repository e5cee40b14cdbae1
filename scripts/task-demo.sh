#!/usr/bin/env bash
# make task-cancel-demo / task-subscribe-demo: a sentinel and the A2A task agent on loopback,
# then the task client in the given mode (subscribe: follow a count to completion; cancel:
# cancel a long count mid-way), then everything stopped again (also on Ctrl-C or failure).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
mode=${1:?usage: task-demo.sh subscribe|cancel}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

wait_for() { # wait_for FILE PATTERN SECONDS
  for _ in $(seq 1 $(( $3 * 10 ))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "task-demo: timed out waiting for '$2' in $1" >&2
  cat "$1" >&2 || true
  return 1
}

FAME_LISTENER_HOST=127.0.0.1 FAME_LISTENER_PORT=0 "$BIN/fame" sentinel -addr-file "$work/addr" 2>"$work/sentinel.log" &
pids+=($!)
wait_for "$work/addr" ":" 10
export FAME_DIRECT_ADMISSION_URL="ws://$(cat "$work/addr")/fame/v1/attach/ws/downstream"
"$BIN/task-agent" >"$work/agent.out" 2>"$work/agent.log" &
pids+=($!)
wait_for "$work/agent.out" READY 15
echo "== task-client $mode (tasks@fame.fabric)"
"$BIN/task-client" "$mode"
echo "== task-client -by-capability $mode (example.count.v1)"
"$BIN/task-client" -by-capability "$mode"
