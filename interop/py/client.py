"""A client of math@fame.fabric on the reference Naylence Python agent SDK (fame-go interop suite).

stdout (only these lines; runtime logs and FAME_SHOW_ENVELOPES output go to stderr):
  add(3, 4) = 7
  multiply(6, 7) = 42
  fib_stream(10) = 0 1 1 2 3 5 8 13 21 34
  whoami = <name>          once per call when WHOAMI=N, all in the same session
  concurrent N ok          when CONCURRENCY=N: N adds in flight at once, all right
Exit 0 only if every result is right. MATH_ADDRESS overrides math@fame.fabric. The runtime reads
the FAME_* variables itself through the SDK's CLIENT_CONFIG.
"""

import asyncio
import os
import sys

from _common import int_env, say
from naylence.agent import Agent
from naylence.agent.configs import CLIENT_CONFIG
from naylence.fame.core import FameFabric

FIB10 = "0 1 1 2 3 5 8 13 21 34"


async def main() -> int:
    whoami_calls = int_env(os.environ, "WHOAMI", 0)
    concurrency = int_env(os.environ, "CONCURRENCY", 0)
    address = os.environ.get("MATH_ADDRESS", "math@fame.fabric")
    failures = 0

    def check(label, got, want):
        nonlocal failures
        if got != want:
            failures += 1
            print(f"py-client: {label}: got {got!r}, want {want!r}", file=sys.stderr)

    async with FameFabric.create(root_config=CLIENT_CONFIG):
        math = Agent.remote_by_address(address)
        got = await math.add(x=3, y=4)
        check("add", got, 7)
        say(f"add(3, 4) = {got}")
        got = await math.multiply(x=6, y=7)
        check("multiply", got, 42)
        say(f"multiply(6, 7) = {got}")
        values = [str(v) async for v in await math.fib_stream(n=10, _stream=True)]
        check("fib_stream", " ".join(values), FIB10)
        say(f"fib_stream(10) = {' '.join(values)}")
        for _ in range(whoami_calls):
            say(f"whoami = {await math.whoami()}")
        if concurrency:
            sums = await asyncio.gather(*(math.add(x=i, y=1) for i in range(concurrency)))
            bad = [i for i, s in enumerate(sums) if s != i + 1]
            check("concurrent adds", len(bad), 0)
            if not bad:
                say(f"concurrent {concurrency} ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
