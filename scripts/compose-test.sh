#!/usr/bin/env bash
# compose-test.sh — end-to-end test of the docker compose deployment (make compose-test):
#   1. start the stack (its own compose project, a free host port) and wait until all healthy;
#      the admission services serve HTTPS and the sentinel wss/https (plain HTTP refused);
#   1b. the math client's credential cannot attach as a replica (system id math-replica1) nor
#      get the math domain (FAME_REQUESTED_LOGICALS): the welcome service (welcome) or the
#      sentinel's grants (direct, FAME_ADMISSION_GRANTS) refuse both;
#   2. run the math client: the three results and the replica that served it;
#   3. run it verbose: envelopes printed, and what the profile promises is on the wire: sec.sig
#      (signing), SecureOpen/SecureAccept and sec.enc (channel encryption), meta.set.aft (AFT
#      stickiness), x5c in NodeAttach (strict-overlay); under welcome admission the welcome
#      service placed and the CA certified both replicas;
#   3b. the HTTP gateway answers curl with {"ok":true,"result":7}, with the math client's own
#      bearer (fame token) under welcome and direct admission; a forged bearer gets 401;
#   4. stop replica 1: runs are still correct, all served by replica 2;
#   5. start replica 1 again: healthy, runs correct, and new sessions reach it again;
#   5b. (cluster profile) the client's sentinel forwarded the calls to the replicas' sentinels
#      over the bus; stop sentinel-2, replica 1's (docker compose stop): replica 1 says hello
#      again, welcome-2 places it on another ready sentinel (the CA certifies the new path), it
#      re-attaches there, runs still answer, and new sessions reach replica 1 again through its
#      new sentinel;
#   6. stop the sentinel under load (docker compose stop sentinel): it drains, every client call
#      ends in a reply or an explicit refusal (none waits for a timeout), it exits 0;
#   7. stop everything.
# Whatever happens, the trap takes the stack down, so nothing is left running.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=$ROOT/scripts/compose-stack.sh
FAME=${BIN:-bin}/fame
case $FAME in /*) ;; *) FAME=$ROOT/$FAME ;; esac
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
# CHECK_RUN_TAIL=1: each result need only end a line, for output where stderr (the printed
# envelopes) and stdout (the results) were merged: the two pipes are read in chunks, so a
# result line can land right after a piece of an envelope that another goroutine printed.
check_run() {
  local out=$1 want=${2:-replica[12]} x=-x pre=''
  if [ "${CHECK_RUN_TAIL:-}" = 1 ]; then x=''; fi
  grep -Eq $x "${pre}add\(3, 4\) = 7$" <<<"$out" || fail "no 'add(3, 4) = 7' in: $out"
  grep -Eq $x "${pre}multiply\(6, 7\) = 42$" <<<"$out" || fail "no 'multiply(6, 7) = 42' in: $out"
  grep -Eq $x "${pre}fib_stream\(10\) = 0 1 1 2 3 5 8 13 21 34$" <<<"$out" || fail "no fib_stream line in: $out"
  grep -Eq $x "${pre}whoami = $want$" <<<"$out" || fail "not served by $want: $out"
}

# profile_var NAME: NAME's value in the profile this test's stack runs.
profile_var() {
  grep -h "^$1=" "$ROOT/compose/env/profile-$(cat "$ROOT/compose/.secrets/stack-profile.$COMPOSE_PROJECT_NAME").env" | cut -d= -f2
}

# envelope_features: reads FAME_SHOW_ENVELOPES output (a "... - Sent envelope" or "... -
# Received envelope" line, then the envelope as 2-space indented JSON up to a "}" in column
# one) and prints "KEY COUNT" lines: per direction the envelopes, the frame types
# (sent.frame.SecureOpen), sec.sig / sec.enc, meta.set.aft and x5c chains in NodeAttach.
envelope_features() {
  awk '
    / - Sent envelope/ { dir = "sent"; inenv = 1; n[dir]++; top = sub2 = type = ""; next }
    / - Received envelope/ { dir = "received"; inenv = 1; n[dir]++; top = sub2 = type = ""; next }
    !inenv { next }
    /^}/ { inenv = 0; next }
    /^  "[A-Za-z]+":/ { top = key($0); sub2 = ""; next }
    /^    "[A-Za-z]+":/ {
      sub2 = key($0)
      if (top == "sec" && (sub2 == "sig" || sub2 == "enc")) n[dir ".sec." sub2]++
      if (top == "frame" && sub2 == "type") { type = value($0); n[dir ".frame." type]++ }
      next
    }
    /^      "aft":/ && top == "meta" && sub2 == "set" { n[dir ".meta.set.aft"]++; next }
    /"x5c":/ && top == "frame" && type == "NodeAttach" { n[dir ".frame.NodeAttach.x5c"]++ }
    function key(l) { sub(/^ *"/, "", l); sub(/".*/, "", l); return l }
    function value(l) { sub(/^[^:]*: *"/, "", l); sub(/".*/, "", l); return l }
    END { for (k in n) print k, n[k] }
  ' | sort
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

# The admission services serve HTTPS (certificates from the stack CA) in every profile.
# (Logs are captured first: grep -q quitting early would fail the pipe under pipefail.)
for svc in oauth2 welcome ca; do
  logs=$("$STACK" compose logs --no-color "$svc" 2>&1)
  grep -q "listening.*scheme=https" <<<"$logs" || fail "$svc does not serve HTTPS"
done
echo "oauth2, welcome and ca serve HTTPS"
# The sentinel too (wss for attach): trusted with the stack CA's root, and no plain HTTP.
published=$("$STACK" compose port sentinel 8000)
"$FAME" healthcheck -q -ca "$ROOT/compose/.secrets/ca/root-ca.crt" "https://$published/readyz" ||
  fail "the sentinel does not serve HTTPS with the stack CA's certificate on $published"
if "$FAME" healthcheck -q "http://$published/readyz" 2>/dev/null; then
  fail "the sentinel answers plain HTTP on $published"
fi
echo "sentinel serves wss/https on $published (certificate from the stack CA)"
# The sentinel runs what the profile says.
want="security=$(profile_var FAME_SECURITY_PROFILE) admission=$(profile_var FAME_ADMISSION_PROFILE) "
logs=$("$STACK" compose logs --no-color sentinel 2>&1)
grep -q "sentinel listening.*$want" <<<"$logs" || fail "the sentinel does not run $want: $(grep 'sentinel listening' <<<"$logs")"
echo "sentinel: $want"

if [ "$(profile_var FAME_ADMISSION_PROFILE)" = welcome ]; then
  step "the math client's credential tries to become a replica"
  # attack ENV=VAL CODE: a client run with ENV must fail, refused by the welcome service with CODE.
  attack() {
    local out
    if out=$("$STACK" compose run --rm --no-deps -T -e "$1" client /math-client -whoami 1 2>&1); then
      fail "client with $1 was admitted: $out"
    fi
    grep -q "$2" <<<"$out" || fail "client with $1 failed without $2: $out"
    echo "client with $1: refused ($2)"
  }
  attack FAME_NODE_ID=math-replica1 system_id_not_granted
  attack FAME_REQUESTED_LOGICALS=fame.fabric logical_not_granted
  logs=$("$STACK" compose logs --no-color welcome 2>&1)
  grep -q "hello refused.*reason=system_id_not_granted.*client=math-client" <<<"$logs" ||
    fail "the welcome service logged no system_id_not_granted refusal for math-client"
elif [ "$(profile_var FAME_ADMISSION_PROFILE)" = direct ]; then
  step "the math client's token tries to become a replica"
  # attack ENV=VAL TEXT REASON: a client run with ENV must fail with the sentinel's negative
  # NodeAttachAck (TEXT), and the sentinel must log the refusal with REASON for math-client.
  attack() {
    local out
    if out=$("$STACK" compose run --rm --no-deps -T -e "$1" client /math-client -whoami 1 2>&1); then
      fail "client with $1 was admitted: $out"
    fi
    grep -q "$2" <<<"$out" || fail "client with $1 failed without '$2': $out"
    grep -q "security refusal.*reason=$3.*subject=math-client" <<<"$("$STACK" compose logs --no-color sentinel 2>&1)" ||
      fail "the sentinel logged no $3 refusal for math-client"
    echo "client with $1: refused ($3)"
  }
  attack FAME_NODE_ID=math-replica1 "may not attach as system id" system_id_not_granted
  attack FAME_REQUESTED_LOGICALS=fame.fabric "may not declare logical" logical_not_granted
fi

step "run"
out=$(run_client)
echo "$out"
check_run "$out"

step "run-verbose"
# Envelopes go to stderr, results to stdout: capture both.
verbose=$(FAME_SHOW_ENVELOPES=true "$STACK" run 2>&1) || fail "verbose client failed: $verbose"
CHECK_RUN_TAIL=1 check_run "$verbose"
features=$(envelope_features <<<"$verbose")
echo "envelopes printed: $(tr '\n' ' ' <<<"$features")"
count() { awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' <<<"$features"; }
[ "$(count sent)" -gt 0 ] && [ "$(count received)" -gt 0 ] ||
  fail "no envelopes printed (sent $(count sent), received $(count received))"
if [ "$(profile_var FAME_DEFAULT_ENCRYPTION_LEVEL)" = channel ]; then
  [ "$(count sent.frame.SecureOpen)" -gt 0 ] || fail "channel encryption but the client sent no SecureOpen"
  [ "$(count received.frame.SecureAccept)" -gt 0 ] || fail "channel encryption but the client received no SecureAccept"
  [ "$(count sent.sec.enc)" -gt 0 ] && [ "$(count received.sec.enc)" -gt 0 ] ||
    fail "channel encryption but no sec.enc both ways (sent $(count sent.sec.enc), received $(count received.sec.enc))"
fi
if [[ "$(profile_var FAME_SECURITY_PROFILE)" == *overlay ]]; then
  [ "$(count sent.sec.sig)" -gt 0 ] && [ "$(count received.sec.sig)" -gt 0 ] ||
    fail "signing profile but no sec.sig both ways (sent $(count sent.sec.sig), received $(count received.sec.sig))"
fi
if [ "$(profile_var FAME_STICKINESS_LEVEL)" = strict ]; then
  # The replica's AFT rides on its replies as meta.set.aft; the sentinel binds the client to it.
  [ "$(count received.meta.set.aft)" -gt 0 ] || fail "stickiness strict but no meta.set.aft (\"aft\") received"
fi
if [ "$(profile_var FAME_SECURITY_PROFILE)" = strict-overlay ]; then
  [ "$(count sent.frame.NodeAttach.x5c)" -gt 0 ] || fail "strict-overlay but the client's NodeAttach carries no x5c certificate chain"
fi
if [ "$(profile_var FAME_ADMISSION_PROFILE)" = welcome ]; then
  # Every node was placed by a welcome service (the cluster profile has one beside each
  # sentinel) and certified by the CA.
  logs=$("$STACK" compose logs --no-color $("$STACK" compose config --services | grep '^welcome') ca 2>&1)
  for r in math-replica1 math-replica2; do
    grep -q "welcome: placed node.*system_id=$r " <<<"$logs" || fail "welcome service did not place $r"
    grep -q "ca: issued node certificate.*requester=$r " <<<"$logs" || fail "CA issued no certificate to $r"
  done
  echo "welcome placed and the CA certified math-replica1 and math-replica2"
fi

step "the HTTP gateway: curl with the client's own bearer"
# Any HTTP client calls agents through the sentinel's gateway; under welcome and direct
# admission with its own bearer (`fame token`: the math client's OAuth2 credentials), which
# under strict-overlay the welcome service admits and the CA certifies as a node of its own.
bearer=()
case "$(profile_var FAME_ADMISSION_PROFILE)" in
  welcome | direct)
    # (compose's own progress lines go to stderr, kept apart from the token)
    tok=$("$STACK" compose run --rm --no-deps -T client /fame token 2>/tmp/compose-test-token.err) ||
      fail "fame token failed: $tok $(cat /tmp/compose-test-token.err)"
    [[ $tok =~ ^[A-Za-z0-9_.-]+$ ]] || fail "fame token printed more than a token: $tok"
    bearer=(-H "Authorization: Bearer $tok") ;;
esac
add='{"targetAddr":"math@fame.fabric","method":"add","params":{"x":3,"y":4}}'
gateway() {
  curl -sS --max-time 20 --cacert "$ROOT/compose/.secrets/ca/root-ca.crt" -X POST \
    "https://$published/fame/v1/gateway/rpc" -H 'Content-Type: application/json' "$@" -d "$add"
}
out=$(gateway "${bearer[@]}") || fail "gateway request failed: $out"
[ "$out" = '{"ok":true,"result":7}' ] || fail "gateway answered $out, want {\"ok\":true,\"result\":7}"
echo "gateway: $out"
if [ ${#bearer[@]} -gt 0 ]; then
  out=$(gateway -H "Authorization: Bearer forged.$RANDOM.token") || fail "gateway request failed: $out"
  grep -q '"code":"unauthorized"' <<<"$out" || fail "a forged bearer got $out, want code unauthorized"
  echo "gateway, forged bearer: $out"
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
# New sessions spread over both replicas again: within a few runs one lands on replica 1
# (each run is a new client sid; a miss in all 10 has odds 1 in 1024 under an even spread).
served=""
for i in $(seq 1 10); do
  out=$(run_client)
  echo "$out" | tail -n 1
  check_run "$out"
  if grep -qx 'whoami = replica1' <<<"$out"; then served=$i; break; fi
done
[ -n "$served" ] || fail "replica1 served none of 10 new sessions after its restart"
echo "replica1 serves new sessions again (run $served)"

if [ "$(cat "$ROOT/compose/.secrets/stack-profile.$COMPOSE_PROJECT_NAME")" = cluster ]; then
  step "cluster: calls cross the bus; stop sentinel-2 (replica 1's sentinel)"
  # The client's sentinel's count of envelopes it forwarded to a peer sentinel (its /metrics on
  # the published port, with the development admin token of env/sentinel.env).
  routed_remote() {
    curl -fsS --max-time 10 --cacert "$ROOT/compose/.secrets/ca/root-ca.crt" -H "Authorization: Bearer dev-admin-token-4f2c9a7e1b" \
      "https://$published/metrics" | awk '$1 == "fame_cluster_routed_total{where=\"remote\"}" { print $2 }'
  }
  remote=$(routed_remote sentinel)
  [ -n "$remote" ] && [ "${remote%.*}" -gt 0 ] || fail "the client's sentinel forwarded no call over the cluster bus (fame_cluster_routed_total{where=\"remote\"} = '$remote')"
  echo "sentinel (the client's) forwarded $remote envelopes to the replicas' sentinels over the bus"
  # ... on its peer links (the direct data path, data_listen/data_advertise in env/cluster.env
  # and docker-compose.cluster.yml), not through NATS.
  linked=$(curl -fsS --max-time 10 --cacert "$ROOT/compose/.secrets/ca/root-ca.crt" -H "Authorization: Bearer dev-admin-token-4f2c9a7e1b" \
    "https://$published/metrics" | awk '$1 == "fame_cluster_link_envelopes_total{result=\"sent\"}" { print $2 }')
  [ -n "$linked" ] && [ "${linked%.*}" -gt 0 ] || fail "the client's sentinel sent nothing on its peer links (fame_cluster_link_envelopes_total{result=\"sent\"} = '$linked')"
  echo "of which $linked on its peer links (direct data path)"
  # Replica 1's re-attaches so far (its log keeps those of earlier runs of the container).
  reattached() { "$STACK" compose logs --no-color math-agent-replica1 2>&1 | grep "reconnected.*path=/" || true; }
  before=$(reattached | wc -l)
  stopped_at=$SECONDS
  "$STACK" compose stop sentinel-2
  # Replica 1 finds sentinel-2 gone, says hello again to welcome-2, which places it on another
  # ready sentinel; the CA certifies it for the new path (same key) and it attaches there.
  deadline=$((SECONDS + 60))
  until line=$(reattached | tail -n +$((before + 1)) | grep -v "path=/sentinel-2/" | head -n 1) && [ -n "$line" ]; do
    [ $SECONDS -lt $deadline ] || fail "replica1 did not re-attach to another sentinel within 60s: $("$STACK" compose logs --no-color --tail 10 math-agent-replica1 2>&1)"
    sleep 1
  done
  echo "replica1 re-attached $((SECONDS - stopped_at)) s after the stop began: ${line##*reconnected }"
  if [ "$(profile_var FAME_ADMISSION_PROFILE)" = welcome ]; then
    # Placed by welcome-2 on a sentinel other than its own, and certified for that path.
    logs=$("$STACK" compose logs --no-color welcome-2 2>&1)
    grep "welcome: placed node.*system_id=math-replica1 " <<<"$logs" | tail -n 1 | grep -vq "assigned_path=/sentinel-2/" ||
      fail "welcome-2 did not place math-replica1 on another sentinel: $(grep 'placed node.*math-replica1' <<<"$logs" | tail -n 2)"
    echo "welcome-2 placed math-replica1 elsewhere: $(grep 'placed node.*system_id=math-replica1 ' <<<"$logs" | tail -n 1 | sed 's/.*welcome: //')"
  fi
  served=""
  for i in $(seq 1 10); do
    out=$(run_client)
    echo "$out" | tail -n 1
    check_run "$out"
    if grep -qx 'whoami = replica1' <<<"$out"; then served=$i; break; fi
  done
  [ -n "$served" ] || fail "replica1 served none of 10 new sessions after sentinel-2 stopped"
  echo "with sentinel-2 stopped, runs answer, and replica1 serves again from its new sentinel (run $served)"
fi

step "stop the sentinel under load: it drains and exits 0"
# Four clients (add, multiply, fib_stream over their channel, then 20000 whoami back to back);
# the sentinel is stopped while they run.
load=$(mktemp -d)
for i in 1 2 3 4; do
  # set -e is inherited: the client's exit code (1 when a call is refused) must still be kept.
  ( rc=0; "$STACK" compose run --rm --no-deps -T client /math-client -whoami 20000 >"$load/out.$i" 2>&1 || rc=$?
    echo "$rc" >"$load/rc.$i" ) &
done
# Stop the sentinel once every client is calling (a client still attaching would only fail to
# dial, which says nothing about the drain).
deadline=$((SECONDS + 60))
for i in 1 2 3 4; do
  until grep -q '^whoami = ' "$load/out.$i" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "client $i made no whoami call within 60s: $(cat "$load/out.$i")"
    [ ! -s "$load/rc.$i" ] || fail "client $i ended before the sentinel stopped: $(cat "$load/out.$i")"
    sleep 0.2
  done
done
"$STACK" compose stop sentinel
deadline=$((SECONDS + 60))
while [ "$(ls "$load" | grep -c '^rc\.')" -lt 4 ]; do
  [ $SECONDS -lt $deadline ] || fail "clients still running 60s after the sentinel stopped"
  sleep 1
done
code=$(docker inspect -f '{{.State.ExitCode}}' "$("$STACK" compose ps -aq sentinel)")
[ "$code" = 0 ] || fail "the sentinel exited $code after docker compose stop (want 0 after its drain)"
logs=$("$STACK" compose logs --no-color sentinel 2>&1)
grep -q "drain finished.*result=idle" <<<"$logs" ||
  fail "the sentinel did not finish its drain idle: $(grep -i drain <<<"$logs" | tail -n 3)"
for i in 1 2 3 4; do
  if grep -Eiq "deadline exceeded|timed out|timeout" "$load/out.$i"; then
    fail "client $i waited for a timeout during the drain: $(grep -Ei 'deadline|time' "$load/out.$i" | head -n 3)"
  fi
  grep -q 'code "DRAINING"' "$load/out.$i" ||
    fail "client $i did not get a DRAINING refusal: $(grep -v '^whoami = ' "$load/out.$i" | tail -n 3)"
  if grep 'math-client: ' "$load/out.$i" | grep -qv 'code "DRAINING"'; then
    fail "client $i failed otherwise than DRAINING: $(grep 'math-client: ' "$load/out.$i")"
  fi
  echo "client $i: exit $(cat "$load/rc.$i"), $(grep -c '^whoami = ' "$load/out.$i" || true) whoami answers, then $(grep -c 'math-client: ' "$load/out.$i" || true) DRAINING refusal"
done
echo "sentinel drained (result=idle) and exited 0: $(grep "drain finished" <<<"$logs" | tail -n 1 | sed 's/.*drain finished/drain finished/')"
rm -rf "$load"

step "stop"
"$STACK" stop
[ -z "$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")" ] || fail "containers still running after stop"
