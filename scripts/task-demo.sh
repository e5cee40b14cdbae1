#!/usr/bin/env bash
# make task-cancel-demo / task-subscribe-demo: a sentinel and the A2A task agent on loopback,
# then the task client in the given mode (subscribe: follow a count to completion; cancel:
# cancel a long count mid-way), then everything stopped again (also on Ctrl-C or failure).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: task-demo.sh subscribe|cancel}
DEMO=task-demo
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"

start_sentinel
export FAME_DIRECT_ADMISSION_URL="ws://$addr/fame/v1/attach/ws/downstream"
"$BIN/task-agent" >"$work/agent.out" 2>"$work/agent.log" &
pids+=($!)
wait_for "$work/agent.out" READY 15
echo "== task-client $mode (tasks@fame.fabric)"
"$BIN/task-client" "$mode"
echo "== task-client -by-capability $mode (example.count.v1)"
"$BIN/task-client" -by-capability "$mode"
