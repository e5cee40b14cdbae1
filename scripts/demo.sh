#!/usr/bin/env bash
# make demo: a sentinel and two math replicas on loopback, the math client, a few whoami calls
# from separate client sessions, then everything stopped again (also on Ctrl-C or failure).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=demo
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"

echo "== starting sentinel on 127.0.0.1 (free port)"
start_sentinel
export FAME_DIRECT_ADMISSION_URL="ws://$addr/fame/v1/attach/ws/downstream"
echo "   sentinel at $addr"

for i in 1 2; do
  echo "== starting math replica$i (math@*.fame.fabric)"
  AGENT_NAME="replica$i" "$BIN/math-agent" >"$work/replica$i.out" 2>"$work/replica$i.log" &
  pids+=($!)
done
wait_for "$work/replica1.out" READY 15
wait_for "$work/replica2.out" READY 15

echo "== math client"
"$BIN/math-client"
echo "== whoami from 4 client sessions (each session sticks to one replica)"
for i in 1 2 3 4; do
  printf 'session %d: ' "$i"
  "$BIN/math-client" -whoami 3 | grep whoami | awk '{print $3}' | paste -sd' ' -
done
echo "== demo done"
