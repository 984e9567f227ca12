"""The chat page's routes (``gateway.routes.ui``): served only when enabled, for applications with a
chat gateway; the page carries public values only; its own files; strict security headers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from quart import Quart

from gateway.app import create_app
from gateway.routes.ui import page_config
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.application.model import Application, AuthenticationSpec
from sluice.kafka import KafkaSettings
from tests.gateway.support import write_app

GATEWAYS = """
gateways:
  - id: open
    type: chat
    parameters: [sessionId]
    chat-options:
      questions-topic: q
      answers-topic: a
      headers:
        - key: langstream-client-session-id
          value-from-parameters: sessionId
  - id: google
    type: chat
    authentication:
      provider: google
      allow-test-mode: true
      configuration:
        clientId: "client-1.apps.googleusercontent.com"
    chat-options:
      questions-topic: q
      answers-topic: a
      headers:
        - key: langstream-client-user-id
          value-from-authentication: subject
  - id: github
    type: chat
    authentication:
      provider: github
      configuration:
        clientId: "gh-client"
        clientSecret: "gh-secret-value"
    chat-options: {questions-topic: q, answers-topic: a}
  - id: in
    type: produce
    topic: q
"""


@pytest.fixture
def application(tmp_path: Path) -> Application:
    return load_application(write_app(tmp_path / "app", {"q": 1, "a": 1}, GATEWAYS), name="my-app")


def _gateway(application: Application, settings: GatewaySettings) -> Quart:
    # The test client serves routes without starting the app: no Kafka is contacted.
    return create_app({("t1", "my-app"): application}, KafkaSettings("127.0.0.1:9"), settings)


def test_the_page_config_lists_chat_gateways_with_public_values_only(
    application: Application,
) -> None:
    config = page_config("t1", application, test_provider=True)
    assert config == {
        "tenant": "t1",
        "application": "my-app",
        "gateways": [
            {"id": "open", "parameters": ["sessionId"], "authentication": None},
            {
                "id": "google",
                "parameters": [],
                "authentication": {
                    "provider": "google",
                    "testMode": True,
                    "googleClientId": "client-1.apps.googleusercontent.com",
                },
            },
            {
                "id": "github",
                "parameters": [],
                "authentication": {"provider": "github", "testMode": False},
            },
        ],
    }
    assert "gh-secret-value" not in json.dumps(config)
    # Without a test provider on the server, test mode is not offered.
    without = page_config("t1", application)
    assert without["gateways"][1]["authentication"]["testMode"] is False


async def test_off_by_default(application: Application) -> None:
    client = _gateway(application, GatewaySettings()).test_client()
    response = await client.get("/ui/t1/my-app")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


async def test_the_page_embeds_its_config_and_loads_its_files(application: Application) -> None:
    settings = GatewaySettings(ui=True, test_provider=AuthenticationSpec("google"))
    client = _gateway(application, settings).test_client()
    response = await client.get("/ui/t1/my-app")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = await response.get_data(as_text=True)
    embedded = re.search(r'<script id="sluice-config" type="application/json">(.*?)</script>', page)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == page_config("t1", application, test_provider=True)
    assert "gh-secret-value" not in page

    for name, kind in (("chat.js", "text/javascript"), ("chat.css", "text/css")):
        asset = await client.get(f"/ui/_assets/{name}")
        assert asset.status_code == 200
        assert asset.content_type.startswith(kind)
    assert (await client.get("/ui/_assets/secrets.yaml")).status_code == 404
    assert (await client.get("/ui/_assets/..%2Fui.py")).status_code == 404

    index = await client.get("/ui")
    assert '<a href="/ui/t1/my-app">' in await index.get_data(as_text=True)


async def test_unknown_applications_and_apps_without_chat_are_404(
    application: Application, tmp_path: Path
) -> None:
    client = _gateway(application, GatewaySettings(ui=True)).test_client()
    missing = await client.get("/ui/t1/nope")
    assert missing.status_code == 404
    assert "application nope of tenant t1 not found" in await missing.get_data(as_text=True)

    plain = load_application(
        write_app(
            tmp_path / "plain", {"q": 1}, "gateways:\n  - {id: in, type: produce, topic: q}\n"
        ),
        name="plain",
    )
    other = create_app(
        {("t1", "plain"): plain}, KafkaSettings("127.0.0.1:9"), GatewaySettings(ui=True)
    )
    response = await other.test_client().get("/ui/t1/plain")
    assert response.status_code == 404
    assert "has no chat gateway" in await response.get_data(as_text=True)


def test_the_embedded_json_cannot_close_the_script_element(tmp_path: Path) -> None:
    from gateway.routes.ui import _page

    page = _page(
        {"tenant": "t", "application": "</script><script>alert(1)</script>", "gateways": []}
    )
    assert "</script><script>alert(1)" not in page
    assert "&lt;/script&gt;" in page.split("<title>")[1].split("</title>")[0]
