"""The reference Naylence Python sentinel (naylence-runtime), launched for the fame-go interop suite.

It runs the runtime's own Sentinel from the agent SDK's SENTINEL_CONFIG, so every FAME_* variable
(FAME_LISTENER_PORT, FAME_SECURITY_PROFILE, FAME_ADMISSION_PROFILE, FAME_NODE_ID, ...) is read by
the runtime itself. PY_STICKINESS=aft-strict (or aft-<level>) adds the reference example's
AFTLoadBalancerStickinessManager at that security level; unset, the sentinel has no stickiness.
stdout carries only "READY" once the listener accepts TCP connections.
"""

import asyncio
import copy
import os
import signal
import sys

from _common import say  # first: moves the runtime's prints off stdout
from naylence.agent.configs import SENTINEL_CONFIG
from naylence.fame.core import FameFabric


async def wait_listening(port: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def main() -> int:
    config = copy.deepcopy(SENTINEL_CONFIG)
    stickiness = os.environ.get("PY_STICKINESS", "")
    if stickiness:
        if not stickiness.startswith("aft-"):
            print(f"py-sentinel: PY_STICKINESS must be aft-<level>, got {stickiness!r}", file=sys.stderr)
            return 2
        config["node"]["stickiness"] = {
            "type": "AFTLoadBalancerStickinessManager",
            "security_level": stickiness[len("aft-"):],
        }
    port = int(os.environ.get("FAME_LISTENER_PORT", "8000"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with FameFabric.get_or_create(root_config=config):
        await wait_listening(port, 30)
        say("READY")
        await stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
