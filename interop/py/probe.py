"""Failover probe on the reference Naylence Python agent SDK (fame-go interop suite).

One session calls whoami on MATH_ADDRESS (default math@fame.fabric) every PROBE_INTERVAL_MS
(default 50) for PROBE_CALLS calls (default 200), each bounded by PROBE_CALL_TIMEOUT_MS (default
5000). stdout, one line per call, then a JSON summary:
  call <i> ok <replica> <ms>
  call <i> error <ms> <ExceptionType>: <message>
  summary {"calls": N, "ok": N, "failed": N, "replicas": {...}, "errors": [...], "failed_after_first_recovery": N}
failed_after_first_recovery counts failures after the first success that followed a failure.
Exit 0 whatever the calls did (the harness judges the summary); 2 on bad settings.
"""

import asyncio
import json
import os
import sys
import time

from _common import int_env, say
from naylence.agent import Agent
from naylence.agent.configs import CLIENT_CONFIG
from naylence.fame.core import FameFabric


async def main() -> int:
    interval = int_env(os.environ, "PROBE_INTERVAL_MS", 50) / 1000
    calls = int_env(os.environ, "PROBE_CALLS", 200)
    call_timeout = int_env(os.environ, "PROBE_CALL_TIMEOUT_MS", 5000) / 1000
    address = os.environ.get("MATH_ADDRESS", "math@fame.fabric")
    replicas: dict[str, int] = {}
    errors: list[dict] = []
    ok = 0
    seen_failure = False
    recovered = False
    failed_after_recovery = 0
    async with FameFabric.create(root_config=CLIENT_CONFIG):
        math = Agent.remote_by_address(address)
        next_at = time.monotonic()
        for i in range(calls):
            now = time.monotonic()
            if next_at > now:
                await asyncio.sleep(next_at - now)
            next_at = max(next_at + interval, time.monotonic())
            start = time.monotonic()
            try:
                name = await asyncio.wait_for(math.whoami(), call_timeout)
            except Exception as exc:  # every failure is counted and named, none is fatal
                ms = round((time.monotonic() - start) * 1000)
                text = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
                errors.append({"call": i, "ms": ms, "error": text})
                say(f"call {i} error {ms} {text}")
                seen_failure = True
                if recovered:
                    failed_after_recovery += 1
                continue
            ms = round((time.monotonic() - start) * 1000)
            ok += 1
            replicas[name] = replicas.get(name, 0) + 1
            if seen_failure:
                recovered = True
            say(f"call {i} ok {name} {ms}")
    say("summary " + json.dumps({"calls": calls, "ok": ok, "failed": len(errors), "replicas": replicas,
                                 "errors": errors, "failed_after_first_recovery": failed_after_recovery}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
