"""The gateway under test, in its own process so its CPU time and RSS can be read from /proc.

``python -m benchmarks.gateway_server --app DIR --bootstrap-servers B --port P [--noop]
[--server hypercorn|uvicorn] [--loop auto|asyncio]``

The real app of :func:`gateway.app.create_app` served by :func:`gateway.serving.serving` (the
Hypercorn configuration of ``sluice run``) on the loop of :func:`sluice.eventloop.run` (uvloop
when installed; ``--loop asyncio`` for the plain one), or by Uvicorn (``--server uvicorn``: the
extra rows measuring whether Hypercorn is the ceiling), plus three benchmark-only routes:

- ``GET /bench/state``: the service pending map, the fan-out subscribers per topic and the
  aiokafka consumers alive in the process (counted through the garbage collector);
- ``WS /bench/echo``: a WebSocket echo on the same server (W1's baseline);
- ``POST /bench/naive-service/<input>/<output>``: a LangStream-style service round trip with a
  new consumer per request (T4's baseline).

With ``--noop`` the process-wide producer is replaced by one that acknowledges at once without
Kafka (T1's framework ceiling): everything else, parsing and validation included, is the same.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from quart import Quart, Response, websocket

from gateway.app import create_app
from gateway.headers import SERVICE_REQUEST_ID_HEADER
from gateway.runtime import runtime_of
from gateway.serving import serving
from gateway.settings import GatewaySettings
from sluice import eventloop
from sluice.application.loader import load_application
from sluice.kafka import KafkaSettings, Producer, SendResult
from sluice.record import Record

TENANT = "default"


class NoopProducer(Producer):
    """Takes every message and acknowledges it at once, without a broker."""

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def enqueue_message(
        self, topic: str, message: Any, *, partition: int | None = None
    ) -> asyncio.Future[SendResult]:
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        future.set_result(SendResult(topic, 0, 0, None, message.header("ce_id")))
        return future


def _consumers_alive() -> int:
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, AIOKafkaConsumer) and getattr(o, "_closed", None) is False
    )


def add_bench_routes(app: Quart, bootstrap: str) -> None:
    runtime = runtime_of(app)

    @app.get("/bench/state")
    async def state() -> Response:
        body = {
            "pending": runtime.pending_count,
            "routers": {t: r.pending_count for t, r in runtime.routers.items()},
            "fanouts": {t: f.subscriber_count for t, f in runtime.fanouts.fanouts.items()},
            "kafka_consumers": _consumers_alive(),
        }
        return Response(json.dumps(body), content_type="application/json")

    @app.websocket("/bench/echo")
    async def echo() -> None:
        while True:
            await websocket.send(await websocket.receive())

    @app.post("/bench/naive-service/<source>/<target>")
    async def naive(source: str, target: str) -> Response:
        # LangStream's GatewayResource.handleServiceWithTopics: a consumer per request, all
        # partitions assigned, positioned at the end (and the position awaited) before the
        # request is produced, then read until a record carries the request id.
        request_id = str(uuid.uuid4())
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        try:
            await consumer.start()
            partitions = consumer.partitions_for_topic(target) or {0}
            tps = [TopicPartition(target, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(tp)
            body = await _request_body()
            await runtime.producer.send(
                source,
                Record(body, headers={SERVICE_REQUEST_ID_HEADER: request_id}),
                source="/bench/naive",
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=100)
                for messages in batches.values():
                    for message in messages:
                        headers = {k: v for k, v in message.headers}
                        if headers.get(SERVICE_REQUEST_ID_HEADER, b"").decode() == request_id:
                            value = message.value.decode() if message.value else "null"
                            return Response(value, content_type="application/json")
            return Response("{}", status=504, content_type="application/json")
        finally:
            await consumer.stop()


async def _request_body() -> Any:
    from quart import request

    data = await request.get_json(force=True)
    return data.get("value") if isinstance(data, dict) else data


async def serve(args: argparse.Namespace) -> None:
    application = load_application(args.app)
    settings = GatewaySettings(
        # W1 measures throughput: the per-connection rate limit (default 100/s) would close the
        # benchmark's sockets with 1008.
        messages_per_second=1e9,
        message_burst=10**9,
    )
    options = dict(item.split("=", 1) for item in args.kafka_option)
    app = create_app(
        {(TENANT, application.name): application},
        KafkaSettings(args.bootstrap_servers, options),
        settings,
    )
    if args.noop:
        runtime_of(app).producer = NoopProducer(KafkaSettings(args.bootstrap_servers))
    add_bench_routes(app, args.bootstrap_servers)
    if args.server == "uvicorn":
        await _uvicorn(app, args.port, settings)
        return
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serving(app, "127.0.0.1", args.port) as base_url:
        print(f"ready {base_url}", flush=True)
        await stop.wait()


async def _uvicorn(app: Quart, port: int, settings: GatewaySettings) -> None:
    """The same app under Uvicorn (its own SIGTERM handling; no drain: a benchmark ends it)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=settings.ping_interval,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped while starting")
        await asyncio.sleep(0.05)
    print(f"ready http://127.0.0.1:{port}", flush=True)
    await task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--noop", action="store_true")
    parser.add_argument("--server", choices=("hypercorn", "uvicorn"), default="hypercorn")
    parser.add_argument(
        "--kafka-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Kafka client property of the gateway (linger.ms=2...); repeat",
    )
    parser.add_argument(
        "--loop", choices=("auto", "asyncio"), default="auto", help="auto: uvloop when installed"
    )
    parser.add_argument("--profile", help="write cProfile statistics here on exit")
    args = parser.parse_args()

    def run() -> None:
        if args.loop == "asyncio":
            asyncio.run(serve(args))
        else:
            eventloop.run(serve(args))

    if args.profile is None:
        run()
        return
    import cProfile

    with cProfile.Profile() as profile:
        run()
    profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
