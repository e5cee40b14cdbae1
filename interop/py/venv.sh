#!/usr/bin/env bash
# Creates (or reuses) interop/py/.venv with the pinned reference Python packages, installed with
# `pip install --require-hashes`. The venv itself lives in a cache keyed on the hash of
# requirements.txt and the interpreter ($INTEROP_VENV_CACHE, default ~/.cache/fame-interop/venv-<hash>)
# and interop/py/.venv links to it, so a fresh clone (CI) with unchanged requirements reuses it
# and a changed requirements file gets a new one. Prints the venv's python path on stdout. naylence-runtime 0.4.13 needs Python >= 3.12; the interpreter is
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
stamp="$( { cat "$req"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)"
cache="${INTEROP_VENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fame-interop}"
target="$cache/venv-$stamp"
# The stamp file is written last: a venv without it is a broken or interrupted install.
if ! [ -x "$target/bin/python" ] || [ "$(cat "$target/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "venv.sh: creating $target with $py ($("$py" --version 2>&1))" >&2
  mkdir -p "$cache"
  rm -rf "$target"
  "$py" -m venv "$target"
  "$target/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r "$req" >&2
  echo "$stamp" > "$target/.stamp"
fi
if [ "$(readlink "$venv" 2>/dev/null)" != "$target" ]; then
  rm -rf "$venv"
  ln -s "$target" "$venv"
fi
echo "$venv/bin/python"
