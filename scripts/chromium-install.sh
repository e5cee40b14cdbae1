#!/usr/bin/env bash
# chromium-install.sh: make Debian's chromium available for the status page's browser test
# (e2e/status_page_browser_test.go, driven by chromedp), idempotently: installs the `chromium`
# package from Debian when no chromium is on PATH. Needs root or passwordless sudo for apt-get.
# Prints nothing when chromium is already there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "chromium-install: not root and no passwordless sudo; cannot install chromium" >&2
    exit 1
  fi
fi

echo "chromium-install: installing chromium from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "chromium-install: chromium still missing after apt-get" >&2; exit 1; }
chromium --version >&2 || true
