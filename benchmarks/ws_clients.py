"""W2's idle consumers, in their own process: ``python -m benchmarks.ws_clients URL COUNT``.

Opens COUNT WebSockets (permessage-deflate negotiated, as browsers do), prints ``connected N``,
then on each ``report`` line from stdin prints one JSON line: how many pushes arrived since the
last report, per sequence number, and the delivery latencies' percentiles (the pushed value
carries its produce time ``t``, same machine clock). ``quit`` closes everything.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

import websockets


def _quantile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else -1


async def main(url: str, count: int) -> None:
    latencies: list[float] = []
    seqs: Counter[int] = Counter()
    sockets: list[websockets.ClientConnection] = []
    listeners: set[asyncio.Task[None]] = set()

    async def listen(ws: websockets.ClientConnection) -> None:
        try:
            async for frame in ws:
                now = time.time()
                value = json.loads(frame)["record"]["value"]
                latencies.append(now - value["t"])
                seqs[value["seq"]] += 1
        except websockets.ConnectionClosed:
            pass

    async def connect() -> None:
        for attempt in range(5):
            try:
                ws = await websockets.connect(url, open_timeout=60, ping_interval=None)
                sockets.append(ws)
                listeners.add(asyncio.create_task(listen(ws)))
                return
            except (OSError, TimeoutError, websockets.InvalidStatus):
                await asyncio.sleep(0.5 * (attempt + 1))

    for start in range(0, count, 100):
        await asyncio.gather(*(connect() for _ in range(min(100, count - start))))
    response = sockets[0].response if sockets else None
    extensions = response.headers.get("Sec-WebSocket-Extensions") if response else None
    print(f"connected {len(sockets)} {json.dumps(extensions)}", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "report":
            ordered = sorted(latencies)

            open_count = sum(1 for ws in sockets if ws.close_code is None)
            body = {
                "received": len(ordered),
                "per_seq": dict(seqs),
                "p50": _quantile(ordered, 0.5),
                "p99": _quantile(ordered, 0.99),
                "max": _quantile(ordered, 1.0),
                "open": open_count,
            }
            print(json.dumps(body), flush=True)
            latencies.clear()
            seqs.clear()
        elif line in ("quit", ""):
            break
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
