# demo-lib.sh: what the loopback demos share (sourced by demo.sh and task-demo.sh): a work
# directory and the pids of what was started, both cleaned up on exit (also on Ctrl-C or
# failure), wait_for, and start_sentinel.
# shellcheck shell=bash
BIN=${BIN:-bin}
DEMO=${DEMO:-demo}
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
  echo "$DEMO: timed out waiting for '$2' in $1" >&2
  cat "$1" >&2 || true
  return 1
}

# start_sentinel: `fame sentinel` on a free loopback port; sets addr to its host:port.
start_sentinel() {
  FAME_LISTENER_HOST=127.0.0.1 FAME_LISTENER_PORT=0 "$BIN/fame" sentinel -addr-file "$work/addr" 2>"$work/sentinel.log" &
  pids+=($!)
  wait_for "$work/addr" ":" 10
  addr=$(cat "$work/addr")
}
