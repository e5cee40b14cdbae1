#!/usr/bin/env bash
# Creates (or reuses) interop/py/.venv with the pinned reference Python packages, installed with
# `pip install --require-hashes`. The venv is reused while requirements.txt and the interpreter
# are unchanged (a stamp file holds their hash), so a second run costs nothing. Prints the venv's
# python path on stdout. naylence-runtime 0.4.13 needs Python >= 3.12; the interpreter is
# $INTEROP_PYTHON, else the first python3.13/python3.12/python3 that is >= 3.12 on PATH, else one
# under pyenv's versions directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"

ok_version() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
  local c
  for c in "${INTEROP_PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$c" ] || continue
    c="$(command -v "$c" 2>/dev/null)" || continue
    if ok_version "$c"; then echo "$c"; return 0; fi
  done
  for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
    if [ -x "$c" ] && ok_version "$c"; then echo "$c"; return 0; fi
  done
  return 1
}

py="$(find_python)" || { echo "venv.sh: no Python >= 3.12 found (naylence-runtime 0.4.13 requires it); set INTEROP_PYTHON" >&2; exit 1; }
stamp="$( { cat "$req"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$venv/bin/python"
  exit 0
fi
echo "venv.sh: creating $venv with $py ($("$py" --version 2>&1))" >&2
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r "$req" >&2
echo "$stamp" > "$venv/.stamp"
echo "$venv/bin/python"
