"""Azurite, Microsoft's Azure Storage emulator (from npm), on loopback for the
azure-blob-storage-source tests: the Blob API with shared-key and SAS authentication.

``npx`` fetches it into npm's cache on first use (half a minute), then starts it in seconds.
Its data lives in memory and goes with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sluice.net import free_port

AZURITE = "azurite@3"
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's fixed development account and key (public, documented by Microsoft)."""


@dataclass(frozen=True)
class Azurite:
    endpoint: str
    """The account's URL: ``http://127.0.0.1:<port>/devstoreaccount1``."""

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.endpoint};"
        )


@contextlib.asynccontextmanager
async def running_azurite() -> AsyncIterator[Azurite]:
    npx = shutil.which("npx")
    if npx is None:
        raise RuntimeError("Azurite runs on Node.js: npx is not installed")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        npx,
        "--yes",
        AZURITE,
        "azurite-blob",
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--silent",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(1800):
            if process.returncode is not None:
                raise RuntimeError(f"azurite exited with {process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            break
        else:
            raise RuntimeError(f"azurite did not listen on port {port}")
        yield Azurite(f"http://127.0.0.1:{port}/{ACCOUNT}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        await process.wait()
