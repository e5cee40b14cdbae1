#!/usr/bin/env bash
# compose-stack.sh — drive the docker compose deployment in compose/ (see compose/README.md).
#
#   compose-stack.sh init          generate compose/.secrets once (CA via `fame ca init`, TLS
#                                  certificates of oauth2/welcome/ca/sentinel, the OAuth2 clients
#                                  of the replicas and of the math client)
#   compose-stack.sh image         build the FROM-scratch image from $BIN (default bin/)
#   compose-stack.sh start         init + image + `compose up -d`, wait until every service is healthy
#   compose-stack.sh run [ARGS]    the math client (math-client ARGS, default -whoami 1) as a one-off
#                                  container on the stack's network
#   compose-stack.sh stop          `compose down --remove-orphans`
#   compose-stack.sh clean         stop, then delete .secrets, .env and the build context
#   compose-stack.sh compose ARGS  any compose command with the stack's settings (ps, logs -f, stop X ...)
#
# Settings (environment): FAME_STACK_PROFILE (strict, overlay, direct, open, cluster: env/profile-*.env,
# and docker-compose.<profile>.yml when there is one;
# default strict; `start` records it for the project's later commands), COMPOSE_PROJECT_NAME (default fame), FAME_IMAGE
# (default fame-go:local), FAME_COMPOSE_PUBLISH (sentinel's host port, default 127.0.0.1:8000),
# BIN (default bin), FAME_SHOW_ENVELOPES=true for `run`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$ROOT/compose
SECRETS=$DIR/.secrets
BIN=${BIN:-bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-fame}
export FAME_IMAGE=${FAME_IMAGE:-fame-go:local}
DEFAULT_PROFILE=strict
START_TIMEOUT=${FAME_COMPOSE_START_TIMEOUT:-120}

log() { echo "compose-stack: $*" >&2; }
die() { log "$*"; exit 1; }

# compose runs whichever front-end exists: the v2 plugin or the v1 docker-compose binary. A
# profile with a compose file of its own (docker-compose.<profile>.yml: cluster) adds it.
compose() {
  local files=(-f "$DIR/docker-compose.yml")
  if [ -n "${FAME_STACK_PROFILE:-}" ] && [ -f "$DIR/docker-compose.$FAME_STACK_PROFILE.yml" ]; then
    files+=(-f "$DIR/docker-compose.$FAME_STACK_PROFILE.yml")
  fi
  if docker compose version >/dev/null 2>&1; then
    docker compose "${files[@]}" --project-directory "$DIR" "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose "${files[@]}" --project-directory "$DIR" "$@"
  else
    die "neither 'docker compose' nor 'docker-compose' found (scripts/docker-install.sh installs them)"
  fi
}

# profile: the explicit FAME_STACK_PROFILE; else, except for start, the one this project's last
# start recorded; else the default.
profile() {
  if [ -n "${FAME_STACK_PROFILE:-}" ]; then
    echo "$FAME_STACK_PROFILE"
  elif [ "${1:-}" != start ] && [ -s "$(profile_file)" ]; then
    cat "$(profile_file)"
  else
    echo "$DEFAULT_PROFILE"
  fi
}

profile_file() { echo "$SECRETS/stack-profile.$COMPOSE_PROJECT_NAME"; }

# settings exports what the compose file interpolates and writes it to compose/.env as well, so
# a hand-typed `docker compose` in compose/ sees the same stack.
settings() {
  FAME_STACK_PROFILE=$(profile "${1:-}")
  [ -f "$DIR/env/profile-$FAME_STACK_PROFILE.env" ] ||
    die "unknown FAME_STACK_PROFILE '$FAME_STACK_PROFILE' (have: $(cd "$DIR/env" && ls profile-*.env | sed 's/profile-//; s/\.env//' | tr '\n' ' '))"
  export FAME_STACK_PROFILE
  export FAME_UID=${FAME_UID:-$(id -u)} FAME_GID=${FAME_GID:-$(id -g)}
  export FAME_COMPOSE_PUBLISH=${FAME_COMPOSE_PUBLISH:-127.0.0.1:8000}
  {
    echo "# written by scripts/compose-stack.sh; safe to delete"
    echo "COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME"
    echo "FAME_STACK_PROFILE=$FAME_STACK_PROFILE"
    echo "FAME_IMAGE=$FAME_IMAGE"
    echo "FAME_UID=$FAME_UID"
    echo "FAME_GID=$FAME_GID"
    echo "FAME_COMPOSE_PUBLISH=$FAME_COMPOSE_PUBLISH"
  } >"$DIR/.env"
}

cmd_init() {
  [ -x "$BIN/fame" ] || die "$BIN/fame missing: run 'make build' first"
  umask 077
  mkdir -p "$SECRETS"
  if [ ! -f "$SECRETS/ca/root-ca.crt" ]; then
    "$BIN/fame" ca init -dir "$SECRETS/ca" >&2
  fi
  # The root certificate is public; nodes mount it read-only as their trust anchor.
  chmod 644 "$SECRETS/ca/root-ca.crt" "$SECRETS/ca/intermediate-chain.crt" "$SECRETS/ca/complete-chain.crt" 2>/dev/null || true
  # TLS certificates for the admission services and the sentinel (wss), from the stack CA
  # (90 days; renewed by a start once a month). Each service mounts only its own key; clients
  # trust root-ca.crt.
  local svc kid services=(oauth2 welcome ca sentinel)
  # The cluster profile's other two sentinels serve wss too, and so do the welcome services
  # beside them.
  [ "${FAME_STACK_PROFILE:-}" = cluster ] && services+=(sentinel-2 sentinel-3 welcome-2 welcome-3)
  for svc in "${services[@]}"; do
    if [ ! -s "$SECRETS/tls/$svc.crt" ] || [ ! -s "$SECRETS/tls/$svc.key" ] ||
      [ -n "$(find "$SECRETS/tls/$svc.crt" -mtime +30 2>/dev/null)" ]; then
      "$BIN/fame" ca server-cert -dir "$SECRETS/ca" -dns "$svc,localhost,127.0.0.1" -out "$SECRETS/tls/$svc" >/dev/null
      log "issued the HTTPS certificate of $svc (compose/.secrets/tls/$svc.crt)"
    fi
  done
  # Two OAuth2 clients: the replicas' and the math client's, each with its own secret, so the
  # client's credential cannot be presented as a replica's. The ids are fixed because the
  # welcome service's grants (env/welcome.env) name them; only the secrets are generated.
  if [ ! -s "$SECRETS/oauth2-clients.env" ] || [ ! -s "$SECRETS/replica-client.env" ] ||
    [ ! -s "$SECRETS/math-client.env" ]; then
    local rs cs
    rs=s-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    cs=s-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    {
      echo "# Dev OAuth2 clients (generated; never commit): mounted only by the oauth2 service."
      echo "FAME_OAUTH2_CLIENTS=math-replicas:$rs,math-client:$cs"
    } >"$SECRETS/oauth2-clients.env"
    {
      echo "# The replicas' OAuth2 client (generated; never commit)."
      echo "FAME_ADMISSION_CLIENT_ID=math-replicas"
      echo "FAME_ADMISSION_CLIENT_SECRET=$rs"
    } >"$SECRETS/replica-client.env"
    {
      echo "# The math client's OAuth2 client (generated; never commit)."
      echo "FAME_ADMISSION_CLIENT_ID=math-client"
      echo "FAME_ADMISSION_CLIENT_SECRET=$cs"
    } >"$SECRETS/math-client.env"
    log "generated the OAuth2 clients math-replicas and math-client in compose/.secrets"
  fi
  # The cluster profile: each sentinel's certificate for the cluster's mutual-TLS links (server
  # and client auth, its service name), and the NATS user and password of every route.
  if [ "${FAME_STACK_PROFILE:-}" = cluster ]; then
    for svc in sentinel sentinel-2 sentinel-3; do
      if [ ! -s "$SECRETS/cluster/$svc.crt" ] || [ ! -s "$SECRETS/cluster/$svc.key" ] ||
        [ -n "$(find "$SECRETS/cluster/$svc.crt" -mtime +30 2>/dev/null)" ]; then
        "$BIN/fame" ca cluster-cert -dir "$SECRETS/ca" -dns "$svc" -out "$SECRETS/cluster/$svc" >/dev/null
        log "issued the cluster (NATS route) certificate of $svc (compose/.secrets/cluster/$svc.crt)"
      fi
    done
    # One ticket signing key for the three welcome services: the sentinels and the CA verify
    # tickets and CA grants against one JWKS (welcome's), whichever service admitted the node.
    if [ ! -s "$SECRETS/welcome/ticket.key" ]; then
      kid=$("$BIN/fame" welcome -init-key "$SECRETS/welcome/ticket.key")
      log "generated the welcome services' shared ticket key (kid $kid) in compose/.secrets/welcome/ticket.key"
    fi
    if [ ! -s "$SECRETS/cluster.env" ]; then
      {
        echo "# The NATS user and password of the cluster's routes (generated; never commit): sentinels only."
        echo "FAME_CLUSTER_USER=fame-cluster"
        echo "FAME_CLUSTER_PASSWORD=p-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      } >"$SECRETS/cluster.env"
      log "generated the cluster's NATS credentials in compose/.secrets/cluster.env"
    fi
  fi
  # The one secret every node shared before the clients were split: gone, so no container can
  # still present it.
  rm -f "$SECRETS/oauth2-client.env"
}

cmd_image() {
  local f
  for f in fame math-agent math-client; do
    [ -x "$BIN/$f" ] || die "$BIN/$f missing: run 'make build' first"
  done
  rm -rf "$DIR/build"
  mkdir -p "$DIR/build"
  cp "$BIN/fame" "$BIN/math-agent" "$BIN/math-client" "$DIR/build/"
  # Without the buildx plugin (Debian's docker.io) the classic builder is the one that works.
  if ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
  fi
  # The classic builder's deprecation banner is noise; show the output only when it fails.
  local out
  out=$(docker build -q -t "$FAME_IMAGE" -f "$DIR/Dockerfile" "$DIR/build" 2>&1) || die "docker build failed: $out"
  log "image $FAME_IMAGE built from $BIN"
}

# wait_healthy waits until every service of the stack reports healthy (or one exits).
wait_healthy() {
  local deadline=$((SECONDS + START_TIMEOUT)) services s id state all
  services=$(compose config --services | grep -vx client)
  while :; do
    all=1
    for s in $services; do
      id=$(compose ps -q "$s" 2>/dev/null || true)
      state=unknown
      [ -n "$id" ] && state=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id" 2>/dev/null || echo gone)
      case $state in
        running/healthy) ;;
        exited/* | dead/* | gone)
          compose logs --no-color --tail 40 "$s" >&2 || true
          die "service $s is $state" ;;
        *) all=0 ;;
      esac
    done
    [ $all = 1 ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      compose ps >&2 || true
      die "stack not healthy after ${START_TIMEOUT}s"
    fi
    sleep 1
  done
}

cmd_start() {
  settings start
  cmd_init
  cmd_image
  echo "$FAME_STACK_PROFILE" >"$(profile_file)"
  log "starting project $COMPOSE_PROJECT_NAME, profile $FAME_STACK_PROFILE ($(grep -h '^FAME_SECURITY_PROFILE\|^FAME_ADMISSION_PROFILE\|^FAME_DEFAULT_ENCRYPTION_LEVEL\|^FAME_STICKINESS_LEVEL' "$DIR/env/profile-$FAME_STACK_PROFILE.env" | tr '\n' ' '))"
  compose up -d --no-build 2>&1 | sed 's/^/  /' >&2
  wait_healthy
  compose ps
  log "sentinel on $(compose port sentinel 8000 2>/dev/null || echo '?')"
}

cmd_run() {
  settings
  [ -f "$SECRETS/math-client.env" ] || die "no compose/.secrets: run 'make start' first"
  [ $# -gt 0 ] || set -- -whoami 1
  # -T: no TTY, so the output is plain lines a script can check.
  compose run --rm --no-deps -T -e FAME_SHOW_ENVELOPES="${FAME_SHOW_ENVELOPES:-false}" client /math-client "$@"
}

cmd_stop() {
  settings
  compose --profile client down --remove-orphans --timeout 5 2>&1 | sed 's/^/  /' >&2
}

cmd_clean() {
  cmd_stop || true
  rm -rf "$SECRETS" "$DIR/.env" "$DIR/build"
  log "removed compose/.secrets, compose/.env, compose/build"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  init) cmd_init ;;
  image) cmd_image ;;
  start) cmd_start ;;
  run) cmd_run "$@" ;;
  stop) cmd_stop ;;
  clean) cmd_clean ;;
  compose) settings; compose "$@" ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
