"""azure-blob-storage-source against Azurite (Microsoft's emulator) on loopback: blobs emitted
with their name and deleted after commit, its three ways to authenticate, its configuration,
and the source in a real worker on the real broker."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

from sluice.application.builtin_config import BadConfiguration, read_configuration
from sluice.record import Record
from tests.workers.builtin.azurite import ACCOUNT, KEY, Azurite, running_azurite
from tests.workers.conftest import StartWorker, prepare, read_all
from workers.builtin.azure_blob import AzureBlobStorageSource, credential_of
from workers.builtin.objectstore import ObjectStoreError


@pytest.fixture(scope="module")
async def azurite() -> AsyncIterator[Azurite]:
    async with running_azurite() as server:
        yield server


def container(server: Azurite, name: str) -> ContainerClient:
    client = ContainerClient(
        server.endpoint, name, credential={"account_name": ACCOUNT, "account_key": KEY}
    )
    if not client.exists():
        client.create_container()
    return client


def upload(server: Azurite, name: str, blobs: dict[str, bytes]) -> None:
    client = container(server, name)
    for blob, data in blobs.items():
        client.upload_blob(blob, data, overwrite=True)


def blob_names(server: Azurite, name: str) -> list[str]:
    return sorted(str(blob.name) for blob in container(server, name).list_blobs())


def container_name() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


def keys(server: Azurite, name: str) -> dict[str, Any]:
    return {
        "endpoint": server.endpoint,
        "container": name,
        "storage-account-name": ACCOUNT,
        "storage-account-key": KEY,
    }


async def drain(source: AzureBlobStorageSource, quiet: float = 2.5) -> list[Record]:
    got: list[Record] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        batch = await source.read()
        if batch:
            got.extend(batch)
            await source.commit(batch)
            last = time.monotonic()
    return got


async def started(config: dict[str, Any]) -> AzureBlobStorageSource:
    source = AzureBlobStorageSource()
    await source.init(config)
    await source.start()
    return source


def test_configuration_needs_an_endpoint_and_credentials() -> None:
    with pytest.raises(BadConfiguration, match="endpoint: is required"):
        read_configuration("azure-blob-storage-source", {"sas-token": "x"})
    with pytest.raises(BadConfiguration, match="sas-token: no credentials"):
        read_configuration("azure-blob-storage-source", {"endpoint": "http://h/acct"})
    with pytest.raises(BadConfiguration, match="storage-account-key: is required with"):
        read_configuration(
            "azure-blob-storage-source", {"endpoint": "http://h/a", "storage-account-name": "a"}
        )
    checked = read_configuration(
        "azure-blob-storage-source", {"endpoint": "http://h/a", "sas-token": "?sv=1&sig=2"}
    )
    assert (checked["container"], checked["idle-time"], checked["file-extensions"]) == (
        "langstream-azure-source",
        5,
        "pdf,docx,html,htm,md,txt",
    )
    assert credential_of(checked) == "sv=1&sig=2"
    connection = {**checked, "sas-token": "", "storage-account-connection-string": "x=1"}
    with pytest.raises(ObjectStoreError, match="has no AccountName and AccountKey"):
        credential_of(connection)
    connection["storage-account-connection-string"] = "AccountName=n;AccountKey=k==;X=y"
    assert credential_of(connection) == {"account_name": "n", "account_key": "k=="}


async def test_blobs_are_emitted_and_deleted_after_commit(azurite: Azurite) -> None:
    name = container_name()
    upload(azurite, name, {"a.txt": b"alpha", "docs/b.md": b"# b", "c.bin": b"\x00"})
    source = await started({**keys(azurite, name), "idle-time": 1})
    first = await source.read()
    assert blob_names(azurite, name) == ["a.txt", "c.bin", "docs/b.md"]  # not committed yet
    rest = await drain(source)
    await source.commit(first)
    records = first + rest
    assert sorted((r.key, r.value, r.headers["name"]) for r in records) == [
        ("a.txt", b"alpha", "a.txt"),
        ("docs/b.md", b"# b", "docs/b.md"),
    ]
    assert blob_names(azurite, name) == ["c.bin"]


async def test_connection_string_and_sas_token(azurite: Azurite) -> None:
    name = container_name()
    upload(azurite, name, {"one.txt": b"1"})
    by_string = await started(
        {
            "endpoint": azurite.endpoint,
            "container": name,
            "storage-account-connection-string": azurite.connection_string,
            "delete-objects": False,
        }
    )
    assert [r.value for r in await by_string.read()] == [b"1"]
    sas = generate_container_sas(
        ACCOUNT,
        name,
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    by_sas = await started(
        {"endpoint": azurite.endpoint, "container": name, "sas-token": "?" + sas}
    )
    [record] = await by_sas.read()
    await by_sas.commit([record])
    assert blob_names(azurite, name) == []
    wrong = {**keys(azurite, name), "storage-account-key": KEY[:-4] + "AAA="}
    with pytest.raises(ObjectStoreError) as caught:
        await started(wrong)
    assert "container" in str(caught.value) and KEY[:-4] not in str(caught.value)


AZURE_APP = """
topics:
  - {{name: "{out}", creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: azure-blob-storage-source
    output: "{out}"
    configuration:
      endpoint: "{endpoint}"
      container: "{container}"
      storage-account-name: "{account}"
      storage-account-key: "{key}"
      idle-time: 1
"""


@pytest.mark.kafka
async def test_azure_source_in_a_worker(
    azurite: Azurite,
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    kafka_bootstrap: str,
) -> None:
    name = container_name()
    upload(azurite, name, {"one.pdf": b"%PDF-1", "two.html": b"<p>2</p>", "skip.exe": b"x"})
    app_dir = app_factory(
        {"pipeline.yaml": AZURE_APP},
        out=topics["out"],
        endpoint=azurite.endpoint,
        container=name,
        account=ACCOUNT,
        key=KEY,
    )
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "t")
    records = await read_all(kafka_bootstrap, topics["out"], 2, settle=1.5)
    assert await worker.stop(signal.SIGTERM) == 0
    assert sorted(r.record.headers["name"] for r in records) == ["one.pdf", "two.html"]
    assert blob_names(azurite, name) == ["skip.exe"]
    assert not any(KEY in line for line in worker.output)
