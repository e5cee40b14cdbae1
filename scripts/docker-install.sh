#!/usr/bin/env bash
# docker-install.sh — make a working Docker engine and compose available on a Debian machine
# (developer box or CI), idempotently:
#   * installs docker.io and docker-compose from Debian when the engine (dockerd) or a compose
#     front-end is missing (a lone static `docker` client is not enough: it needs a daemon);
#   * starts dockerd in the background when `docker info` fails, logging to /tmp/dockerd.log,
#     and waits until `docker info` succeeds.
# Needs root (or passwordless sudo) for the install and the daemon. Prints nothing scary when
# everything is already in place.
set -euo pipefail

LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
WAIT=${DOCKERD_WAIT_SECONDS:-60}

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "docker-install: not root and no sudo; cannot install or start Docker" >&2
    exit 1
  fi
fi

have_compose() {
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1
}

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1 || ! have_compose; then
  echo "docker-install: installing docker.io and docker-compose from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq docker.io docker-compose >/dev/null
fi

# An already reachable daemon is left alone (e.g. a host Docker socket mounted into CI).
if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker-install: starting dockerd (log: $LOG)" >&2
  # setsid + nohup: the daemon must outlive this script and the make target that ran it.
  $SUDO setsid nohup dockerd >"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$WAIT"); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker-install: dockerd did not come up within ${WAIT}s; last lines of $LOG:" >&2
tail -n 30 "$LOG" >&2 || true
exit 1
