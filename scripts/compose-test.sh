#!/usr/bin/env bash
# compose-test.sh — end-to-end test of the docker compose deployment (make compose-test):
#   1. start the stack (its own compose project, a free host port) and wait until all healthy;
#   2. run the math client: the three results and the replica that served it;
#   3. run it verbose: envelopes printed (and, with channel encryption, the SecureOpen handshake);
#   4. stop replica 1: runs are still correct, all served by replica 2;
#   5. start replica 1 again: healthy, runs correct;
#   6. stop everything.
# Whatever happens, the trap takes the stack down, so nothing is left running.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=$ROOT/scripts/compose-stack.sh
# A project of its own and a random loopback port: a developer's `make start` stack (project
# "fame", port 8000) is left alone.
export COMPOSE_PROJECT_NAME=${FAME_TEST_PROJECT:-fame-test}
export FAME_COMPOSE_PUBLISH=127.0.0.1:
START=$SECONDS

step() { echo "== compose-test [$((SECONDS - START))s]: $*"; }
fail() { echo "compose-test: FAIL: $*" >&2; exit 1; }

# compose/.env describes the developer's stack; restore it after.
saved=$(mktemp -d)
[ -f "$ROOT/compose/.env" ] && cp "$ROOT/compose/.env" "$saved/.env"
cleanup() {
  local rc=$?
  step "tearing down project $COMPOSE_PROJECT_NAME"
  if [ $rc != 0 ]; then
    "$STACK" compose ps >&2 || true
    "$STACK" compose logs --no-color --tail 30 >&2 || true
  fi
  "$STACK" stop >/dev/null 2>&1 || true
  left=$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
  if [ -n "$left" ]; then
    echo "compose-test: removing leftover containers $left" >&2
    docker rm -f $left >/dev/null || true
    rc=1
  fi
  [ -f "$saved/.env" ] && cp "$saved/.env" "$ROOT/compose/.env"
  rm -rf "$saved"
  if [ $rc = 0 ]; then
    echo "compose-test: PASS ($((SECONDS - START))s)"
  else
    echo "compose-test: FAIL (exit $rc, $((SECONDS - START))s)" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check_run OUTPUT [REPLICA]: the three results, one whoami line (from REPLICA when given).
check_run() {
  local out=$1 want=${2:-replica[12]}
  grep -qx 'add(3, 4) = 7' <<<"$out" || fail "no 'add(3, 4) = 7' in: $out"
  grep -qx 'multiply(6, 7) = 42' <<<"$out" || fail "no 'multiply(6, 7) = 42' in: $out"
  grep -qx 'fib_stream(10) = 0 1 1 2 3 5 8 13 21 34' <<<"$out" || fail "no fib_stream line in: $out"
  grep -Eqx "whoami = $want" <<<"$out" || fail "not served by $want: $out"
}

# run_client [ENV=VAL...]: the client's stdout; fails the test if the client fails.
run_client() {
  local out
  out=$(env "$@" "$STACK" run 2>/tmp/compose-test-client.err) ||
    fail "client exited non-zero: $out $(cat /tmp/compose-test-client.err)"
  echo "$out"
}

step "start (profile ${FAME_STACK_PROFILE:-default})"
"$STACK" start

step "run"
out=$(run_client)
echo "$out"
check_run "$out"

step "run-verbose"
# Envelopes go to stderr, results to stdout: capture both.
verbose=$(FAME_SHOW_ENVELOPES=true "$STACK" run 2>&1) || fail "verbose client failed: $verbose"
check_run "$verbose"
sent=$(grep -c 'Sent envelope' <<<"$verbose" || true)
recv=$(grep -c 'Received envelope' <<<"$verbose" || true)
[ "$sent" -gt 0 ] && [ "$recv" -gt 0 ] || fail "no envelopes printed (sent $sent, received $recv)"
echo "printed $sent sent and $recv received envelopes; frames: $(grep -o '"type": "[A-Za-z]*"' <<<"$verbose" | sort | uniq -c | awk '{printf "%s %s, ", $1, $3}')"
level=$(grep -h '^FAME_DEFAULT_ENCRYPTION_LEVEL=' "$ROOT/compose/env/profile-$(cat "$ROOT/compose/.secrets/stack-profile.$COMPOSE_PROJECT_NAME").env" | cut -d= -f2)
if [ "$level" = channel ]; then
  grep -q '"type": "SecureOpen"' <<<"$verbose" || fail "channel profile but no SecureOpen printed"
  grep -q '"type": "SecureAccept"' <<<"$verbose" || fail "channel profile but no SecureAccept printed"
  grep -q '"sig"' <<<"$verbose" || fail "signed profile but no signature printed"
fi

step "stop math-agent-replica1"
"$STACK" compose stop -t 5 math-agent-replica1
for i in 1 2 3; do
  out=$(run_client)
  echo "$out" | tail -n 1
  check_run "$out" replica2
done

step "start math-agent-replica1 again"
"$STACK" compose start math-agent-replica1
deadline=$((SECONDS + 60))
until [ "$(docker inspect -f '{{.State.Health.Status}}' "$("$STACK" compose ps -q math-agent-replica1)")" = healthy ]; do
  [ $SECONDS -lt $deadline ] || fail "replica1 not healthy again within 60s"
  sleep 1
done
out=$(run_client)
echo "$out" | tail -n 1
check_run "$out"

step "stop"
"$STACK" stop
[ -z "$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")" ] || fail "containers still running after stop"
