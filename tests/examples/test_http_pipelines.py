"""LangStream's two HTTP example pipelines, written here in the same shape, under ``sluice run``
with the public URLs they call (``https://geocoding-api.open-meteo.com``,
``https://hooks.slack.com``) left as they are: the worker reaches local fakes of those hosts
through an HTTPS proxy (``tests/fakes/internet.py``), as it would reach the real ones from
behind a corporate proxy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.examples.support import receive_json, sluice_run
from tests.fakes.internet import Answer, Exchange, LocalInternet

pytestmark = pytest.mark.kafka

GEOCODING = """
topics:
  - name: "input-topic"
    creation-mode: create-if-not-exists
  - name: "output-topic"
    creation-mode: create-if-not-exists
pipeline:
  - name: "convert-to-json"
    type: "document-to-json"
    input: "input-topic"
    configuration:
      text-field: "city"
  - name: "Ask the geocoding API"
    type: "http-request"
    configuration:
      url: "https://geocoding-api.open-meteo.com/v1/search"
      query-string:
        name: "{{{ value.city }}}"
        count: "1"
        format: "json"
      output-field: "value.response"
      method: "GET"
  - name: "Keep the time zone"
    type: "compute"
    configuration:
      fields:
        - name: "value.timezone"
          expression: "value.response.results[0].timezone"
          type: STRING
  - name: "Drop the response"
    type: "drop-fields"
    output: "output-topic"
    configuration:
      fields:
        - response
"""
CHAT = """
gateways:
  - id: chat
    type: chat
    chat-options:
      answers-topic: output-topic
      questions-topic: input-topic
"""

SLACK = """
topics:
  - name: "input-topic"
    creation-mode: create-if-not-exists
pipeline:
  - name: "convert-to-json"
    type: "document-to-json"
    input: "input-topic"
    configuration:
      text-field: "text"
  - name: "Post to Slack"
    type: "http-request"
    configuration:
      url: "${globals.slack.url}${secrets.slack.token}"
      body: '{"text":"{{ value.text }}"}'
      output-field: "value.response"
      method: "POST"
"""
SLACK_CONFIGURATION = """
configuration:
  defaults:
    globals:
      slack:
        url: "https://hooks.slack.com/services/"
"""
SLACK_GATEWAYS = """
gateways:
  - id: produce-input
    type: produce
    topic: input-topic
    parameters:
      - sessionId
    produce-options:
      headers:
        - key: langstream-client-session-id
          value-from-parameters: sessionId
"""
SLACK_SECRETS = """
secrets:
  - id: slack
    data:
      token: "T0001/B0001/secret-token"
"""

ZONES = {"Rome": "Europe/Rome", "New York": "America/New_York"}


def geocoding(request: Exchange) -> Answer:
    city = request.query.get("name", [""])[0]
    results = [{"name": city, "timezone": ZONES[city]}] if city in ZONES else []
    return 200, {"Content-Type": "application/json"}, json.dumps({"results": results}).encode()


def slack(request: Exchange) -> Answer:
    return 200, {"Content-Type": "text/plain"}, b"ok"


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text.lstrip("\n"))
    return folder


async def test_http_request_processor(kafka_bootstrap: str, tmp_path: Path) -> None:
    app = write(
        tmp_path / "http-request-processor", {"pipeline.yaml": GEOCODING, "gateways.yaml": CHAT}
    )
    with LocalInternet({"geocoding-api.open-meteo.com": geocoding}, tmp_path) as internet:
        async with (
            sluice_run(app, kafka_bootstrap, tmp_path, environ=internet.env) as running,
            connect(running.ws_url("chat", "chat")) as chat,
        ):
            answers = []
            for city in ("Rome", "New York"):
                await chat.send(json.dumps({"value": city}))
                assert await receive_json(chat) == {"status": "OK", "reason": None}
                answers.append(
                    json.loads((await receive_json(chat, timeout=60))["record"]["value"])
                )
    assert answers == [
        {"city": "Rome", "timezone": "Europe/Rome"},
        {"city": "New York", "timezone": "America/New_York"},
    ]
    asked = [r for r in internet.requests if r.host == "geocoding-api.open-meteo.com"]
    assert [(r.method, r.path, r.query) for r in asked] == [
        ("GET", "/v1/search", {"name": [city], "count": ["1"], "format": ["json"]})
        for city in ("Rome", "New York")
    ]


async def test_slack(kafka_bootstrap: str, tmp_path: Path) -> None:
    app = write(
        tmp_path / "slack",
        {
            "pipeline.yaml": SLACK,
            "configuration.yaml": SLACK_CONFIGURATION,
            "gateways.yaml": SLACK_GATEWAYS,
        },
    )
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(SLACK_SECRETS)
    with LocalInternet({"hooks.slack.com": slack}, tmp_path) as internet:
        async with (
            sluice_run(
                app, kafka_bootstrap, tmp_path, ["-s", str(secrets)], environ=internet.env
            ) as running,
            httpx.AsyncClient(timeout=30) as http,
        ):
            url = running.http_url("produce", "produce-input") + "?param:sessionId=s1"
            for text in ("build 42 passed", "it's <done>"):
                produced = await http.post(url, json={"value": text})
                assert produced.json() == {"status": "OK", "reason": None}
            await _until(lambda: len(internet.requests) >= 2)
    posts = [(r.method, r.path, r.headers.get("content-type"), r.body) for r in internet.requests]
    # {{ }} escapes HTML as LangStream's Mustache does; {{{ }}} would not.
    assert posts == [
        ("POST", "/services/T0001/B0001/secret-token", None, b'{"text":"build 42 passed"}'),
        ("POST", "/services/T0001/B0001/secret-token", None, b'{"text":"it&#39;s &lt;done&gt;"}'),
    ]


async def _until(condition: Callable[[], bool], within: float = 60) -> None:
    import asyncio

    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)
