"""A real S3-compatible server on loopback for the document sources' tests: moto's server mode,
which speaks S3's REST API (signatures, buckets, listings, objects).

moto runs in an environment of its own, built by ``uv tool run`` into uv's cache on first use
(seconds afterwards): its botocore pins python-dateutil below 3, which the kubernetes client
Sluice depends on no longer accepts, so it cannot be installed next to Sluice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from uv import find_uv_bin

from sluice.net import free_port

MOTO = "moto[server]>=5,<6"
ACCESS_KEY = "test-access"
SECRET_KEY = "test-secret-do-not-print"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def config(self, bucket: str) -> dict[str, str]:
        """LangStream's keys for ``bucket`` on this server."""
        return {
            "bucketName": bucket,
            "endpoint": self.endpoint,
            "access-key": ACCESS_KEY,
            "secret-key": SECRET_KEY,
            "region": "us-east-1",
        }


@contextlib.asynccontextmanager
async def running_s3_server(port: int | None = None) -> AsyncIterator[S3Server]:
    """The server (on ``port``, else a free one), for as long as the ``async with`` block
    runs; its buckets live in its memory."""
    port = port or free_port()
    process = await asyncio.create_subprocess_exec(
        find_uv_bin(),
        "tool",
        "run",
        "--quiet",
        "--from",
        MOTO,
        "moto_server",
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        await _wait_for(endpoint, process)
        yield S3Server(endpoint)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        await process.wait()


async def _wait_for(endpoint: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(1200):
            if process.returncode is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}")
            try:
                await client.get(f"{endpoint}/moto-api/")
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer on {endpoint}")
