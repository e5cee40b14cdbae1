"""A math agent on the reference Naylence Python agent SDK, for the fame-go interop suite.

Operations: add(x, y), multiply(x, y), fib_stream(n) (streaming 0 1 1 2 ...), whoami() -> AGENT_NAME
(or the node id when unset). The runtime reads every FAME_* variable itself through the SDK's
NODE_CONFIG (FAME_DIRECT_ADMISSION_URL, FAME_SECURITY_PROFILE, FAME_ADMISSION_PROFILE, ...).

MATH_LOGICAL: "fame.fabric" (default, exact bind) or "*.fame.fabric" (a pool replica).
stdout carries only "READY" once math@fame.fabric is served; runtime logs go to stderr.
"""

import asyncio
import copy
import os
import signal
import sys

from _common import say  # first: moves the runtime's prints off stdout
from naylence.agent import BaseAgent
from naylence.agent.configs import NODE_CONFIG
from naylence.fame.core import FameFabric
from naylence.fame.service import operation


class Math(BaseAgent):
    @operation(name="add")
    async def add(self, x: int, y: int) -> int:
        return x + y

    @operation(name="multiply")
    async def multiply(self, x: int, y: int) -> int:
        return x * y

    @operation(name="fib_stream", streaming=True)
    async def fib_stream(self, n: int):
        a, b = 0, 1
        for _ in range(n):
            yield a
            a, b = b, a + b

    @operation(name="whoami")
    async def whoami(self) -> str:
        name = os.environ.get("AGENT_NAME")
        if name:
            return name
        fabric = FameFabric.current()
        node = getattr(fabric, "node", None)
        return getattr(node, "id", "unknown")


async def main() -> int:
    logical = os.environ.get("MATH_LOGICAL", "fame.fabric")
    if logical not in ("fame.fabric", "*.fame.fabric"):
        print(f"py-agent: MATH_LOGICAL must be fame.fabric or *.fame.fabric, got {logical!r}", file=sys.stderr)
        return 2
    config = copy.deepcopy(NODE_CONFIG)
    config["node"]["requested_logicals"] = [logical]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with FameFabric.get_or_create(root_config=config) as fabric:
        address = await fabric.serve(Math(name="math"), "math@fame.fabric")
        print(f"py-agent: serving {address} (logical {logical})", file=sys.stderr)
        say("READY")
        await stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
