"""Shared bits of the interop scripts: a clean stdout for the harness protocol."""

import sys

# The runtime prints envelopes (FAME_SHOW_ENVELOPES=true) and some messages with print(); keep
# the real stdout for the harness protocol lines and send everything else to stderr.
_PROTOCOL = sys.stdout
sys.stdout = sys.stderr


def say(line: str) -> None:
    """Write one protocol line to the real stdout."""
    _PROTOCOL.write(line + "\n")
    _PROTOCOL.flush()


def int_env(environ, name: str, default: int) -> int:
    raw = environ.get(name, "")
    if raw == "":
        return default
    value = int(raw)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {raw!r}")
    return value
