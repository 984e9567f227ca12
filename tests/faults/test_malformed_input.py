"""F12 (a) malformed JSON and F13 wrong content types, at the gateway's produce endpoint.

Malformed bodies answer 400 problem+json with a ``detail`` and no stack trace (a body nested
100,000 deep included: no RecursionError escapes), a body over the limit 413, and nothing of them
is written (I2). A Content-Type the gateway does not read answers 415 with ``Accept-Post``
listing those it does; parameters such as ``charset`` and the case of the media type do not
matter. Valid requests before and after are written (I1), and no answer is a 5xx.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from sluice.application import load_application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import ensure_topics
from tests.faults.support import (
    Check,
    Ledger,
    counts,
    gateway_process,
    other_5xx,
    produce_app,
    read_topic,
    summary,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(120)]

JSON = "application/json"


def _malformed(ident: str) -> dict[str, tuple[bytes, int]]:
    """Name: (body sent as application/json, the status it must get)."""
    deep = 100_000
    return {
        "unterminated": (b'{"value": "' + ident.encode(), 400),
        "trailing garbage": (b'{"value": "' + ident.encode() + b'"} and more', 400),
        "nested 100k deep": (
            b'{"value": "' + ident.encode() + b'", "headers": ' + b"[" * deep + b"]" * deep + b"}",
            400,
        ),
        "not UTF-8": (b'{"value": "' + ident.encode() + b' \xff\xfe"}', 400),
        "empty": (b"", 400),
        "a number": (b"42", 400),
        "value of the wrong type": (
            b'{"value": "' + ident.encode() + b'", "key": {}, "headers": 7}',
            400,
        ),
    }


def _is_problem(response: httpx.Response) -> bool:
    if response.headers.get("content-type") != "application/problem+json":
        return False
    body = response.json()
    return (
        body.get("status") == response.status_code
        and bool(body.get("detail"))
        and "Traceback" not in response.text
    )


async def test_f12a_malformed_json_is_400_and_nothing_is_written(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"f12-{uuid.uuid4().hex[:12]}"
    app = produce_app(tmp_path, topic)
    await ensure_topics(KafkaSettings(kafka_bootstrap), load_application(app).topics.values())
    ledger = Ledger()
    bad: dict[str, int] = {}
    started = time.monotonic()
    async with (
        gateway_process(app, kafka_bootstrap, tmp_path / "gateway.log") as gateway,
        httpx.AsyncClient(timeout=30, trust_env=False) as client,
    ):
        url = f"{gateway.url}/api/gateways/produce/default/faults/in"
        for _ in range(5):
            await ledger.produce(client, url)
        for name, (body, _) in _malformed(ident := ledger.new_id()).items():
            try:
                response = await client.post(url, content=body, headers={"Content-Type": JSON})
            except httpx.TransportError as error:
                raise AssertionError(f"{name}: no answer ({error!r})") from error
            ledger.statuses[response.status_code] += 1
            ledger.fail.add(ident)
            bad[name] = response.status_code
            assert _is_problem(response), (name, response.status_code, response.text[:500])
            ident = ledger.new_id()
        for _ in range(5):
            await ledger.produce(client, url)
        done = time.monotonic() - started

    found = counts(await read_topic(kafka_bootstrap, topic, expect=ledger.ok, within=30))
    check = Check.of(ledger, found)
    written = ledger.fail & found.keys()
    line = summary(
        "F12a malformed JSON at the gateway",
        sent=ledger.sent,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(check.lost),
        phantoms=len(check.phantoms | written),
        duplicates=check.duplicates,
        other_5xx=other_5xx(ledger.statuses),
        recovered=done,
        extra=f"answers {bad}",
    )
    assert bad == {name: status for name, (_, status) in _malformed("x").items()}, line
    assert not check.lost and not check.phantoms and not written, line
    assert set(ledger.statuses) <= {200, 400}, line


UNSUPPORTED = (
    "application/x-www-form-urlencoded",
    "application/xml",
    "multipart/form-data; boundary=x",
    "image/png",
)
SUPPORTED = (
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/json;charset=UTF-8",
    "text/plain; charset=utf-8",
)


async def test_f13_unsupported_content_types_are_415_with_accept_post(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"f13-{uuid.uuid4().hex[:12]}"
    app = produce_app(tmp_path, topic)
    await ensure_topics(KafkaSettings(kafka_bootstrap), load_application(app).topics.values())
    ledger = Ledger()
    media: dict[str, tuple[int, str | None]] = {}
    async with (
        gateway_process(app, kafka_bootstrap, tmp_path / "gateway.log") as gateway,
        httpx.AsyncClient(timeout=30, trust_env=False) as client,
    ):
        url = f"{gateway.url}/api/gateways/produce/default/faults/in"
        for content_type in UNSUPPORTED + SUPPORTED:
            ident = ledger.new_id()
            response = await client.post(
                url, content=f'{{"value": "{ident}"}}', headers={"Content-Type": content_type}
            )
            ledger.statuses[response.status_code] += 1
            (ledger.ok if response.is_success else ledger.fail).add(ident)
            media[content_type] = (response.status_code, response.headers.get("accept-post"))
        # Structured mode: the CloudEvent is the body.
        structured = "application/cloudevents+json; charset=utf-8"
        ident = ledger.new_id()
        event = {"specversion": "1.0", "id": ident, "source": "/f", "type": "t", "data": ident}
        response = await client.post(url, json=event, headers={"Content-Type": structured})
        ledger.statuses[response.status_code] += 1
        (ledger.ok if response.is_success else ledger.fail).add(ident)
        media[structured] = (response.status_code, None)

    found = counts(await read_topic(kafka_bootstrap, topic, expect=ledger.ok, within=30))
    check = Check.of(ledger, found)
    written = ledger.fail & found.keys()
    line = summary(
        "F13 content types",
        sent=ledger.sent,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(check.lost),
        phantoms=len(check.phantoms | written),
        duplicates=check.duplicates,
        other_5xx=other_5xx(ledger.statuses),
        extra=f"answers (status, Accept-Post) {media}",
    )
    assert not check.lost and not check.phantoms and not written, line
    assert {t: s for t, (s, _) in media.items()} == {
        **{t: 415 for t in UNSUPPORTED},
        **{t: 200 for t in (*SUPPORTED, structured)},
    }, line
    for content_type in UNSUPPORTED:
        accept_post = media[content_type][1]
        assert accept_post and "application/json" in accept_post, (
            f"415 for {content_type} without Accept-Post naming application/json: {line}"
        )


async def test_a_10_mb_body_gets_its_413_not_a_reset(kafka_bootstrap: str, tmp_path: Path) -> None:
    # The client sends the whole body without waiting (no Expect: 100-continue), as most do.
    topic = f"f12-{uuid.uuid4().hex[:12]}"
    app = produce_app(tmp_path, topic)
    await ensure_topics(KafkaSettings(kafka_bootstrap), load_application(app).topics.values())
    ident = f"ledger-{uuid.uuid4().hex}"
    body = b'{"value": "' + ident.encode() + b" " + b"x" * 10_000_000 + b'"}'
    async with (
        gateway_process(app, kafka_bootstrap, tmp_path / "gateway.log") as gateway,
        httpx.AsyncClient(timeout=30, trust_env=False) as client,
    ):
        url = f"{gateway.url}/api/gateways/produce/default/faults/in"
        outcome: int | str
        try:
            response = await client.post(url, content=body, headers={"Content-Type": JSON})
            outcome = response.status_code
        except httpx.TransportError as error:
            outcome = repr(error)
        after = await client.post(url, json={"value": "after"})
    found = counts(await read_topic(kafka_bootstrap, topic, settle=1))
    summary(
        "F12a 10 MB JSON string",
        sent=2,
        ok=int(after.is_success),
        info=int(not isinstance(outcome, int)),
        lost=0 if after.is_success else 1,
        phantoms=int(ident in found),
        duplicates=0,
        other_5xx=int(isinstance(outcome, int) and outcome >= 500 and outcome != 503),
        extra=f"answer {outcome}, then {after.status_code}",
    )
    assert ident not in found
    assert after.status_code == 200, after.text
    assert outcome == 413, f"a 10 MB body got {outcome} instead of 413"
