# bench-lib.sh: what the benchmark drivers (bench-compare.sh, bench-fullstack.sh, bench-instr.sh,
# bench-instr-ab.sh) share; sourced, not run. The sourcing script owns the array `pids` (the
# background processes it started, oldest first).

# stop_all: stop what the script started, newest first, each one waited for before the next
# is stopped: an agent drains on SIGTERM, which needs its sentinel still up (stopped together,
# the agent would wait out its drain timeout).
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  pids=()
}

# wait_for FILE PATTERN SECONDS PID: until PATTERN is in FILE; gives up early when PID has
# exited (showing the end of FILE and of its .log sibling) and after SECONDS.
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    if ! kill -0 "$4" 2>/dev/null; then
      echo "${0##*/}: process $4 exited before '$2' appeared in $1" >&2
      tail -20 "$1" "${1%.*}.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
  echo "${0##*/}: timed out waiting for '$2' in $1" >&2
  tail -20 "$1" "${1%.*}.log" >&2 2>/dev/null || true
  return 1
}

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# secs DURATION: "10s" / "1500ms" / "2m" -> whole seconds, rounded up.
secs() {
  python3 -c 'import re,sys,math
m=re.fullmatch(r"([0-9.]+)(ms|s|m)",sys.argv[1]) or sys.exit("bad duration "+sys.argv[1])
print(math.ceil(float(m[1])*{"ms":0.001,"s":1,"m":60}[m[2]]))' "$1"
}

# ms DURATION: "10s" / "1500ms" / "2m" -> milliseconds.
ms() {
  python3 -c 'import re,sys
m=re.fullmatch(r"([0-9.]+)(ms|s|m)",sys.argv[1]) or sys.exit("bad duration "+sys.argv[1])
print(round(float(m[1])*{"ms":1,"s":1000,"m":60000}[m[2]]))' "$1"
}

# bench_init: sets `work` to a new directory and `pids` to none; at exit every process in pids
# is stopped and work removed (an interrupt exits 130).
bench_init() {
  work=$(mktemp -d)
  pids=()
  trap 'stop_all; rm -rf "$work"' EXIT
  trap 'exit 130' INT TERM
}
