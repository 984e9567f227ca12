"""The chat web page: ``/ui/{tenant}/{application}`` for the chat gateways of an application.

Served only with ``GatewaySettings.ui`` (``sluice run --ui``). Plain HTML, CSS and JavaScript
shipped with the package (``gateway/ui_assets``), no build step. The page talks to the same
``/v1/chat/...`` WebSocket as any other client; what it needs to know about the application
(its chat gateways, their parameters, how to sign in) is written into the page as JSON by
:func:`page_config`: public values only (a Google client id is public by design; secrets,
GitHub client secrets and tokens never are).
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any, Final

from quart import Blueprint, Quart, Response

from gateway.errors import NotFound
from gateway.runtime import GatewayRuntime
from sluice.application.model import Application, GatewaySpec

__all__ = ["page_config", "register"]

_ASSETS: Final = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
}
_GSI: Final = "https://accounts.google.com/gsi/"
# The page loads Google Identity Services only when a gateway signs in with Google.
_CSP: Final = "; ".join(
    [
        "default-src 'self'",
        f"script-src 'self' {_GSI}client",
        f"style-src 'self' {_GSI}style",
        f"frame-src {_GSI}",
        f"connect-src 'self' ws: wss: {_GSI}",
        "img-src 'self' data: https://*.googleusercontent.com",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> str:
    return (resources.files("gateway") / "ui_assets" / name).read_text(encoding="utf-8")


def _authentication(spec: GatewaySpec, test_provider: bool) -> dict[str, Any] | None:
    auth = spec.authentication
    if auth is None:
        return None
    described: dict[str, Any] = {
        "provider": auth.provider,
        "testMode": auth.allow_test_mode and test_provider,
    }
    client_id = auth.configuration.get("clientId") or auth.configuration.get("client-id")
    if auth.provider == "google" and isinstance(client_id, str):
        described["googleClientId"] = client_id
    return described


def page_config(
    tenant: str, application: Application, *, test_provider: bool = False
) -> dict[str, Any]:
    """What the page knows about ``application``: its chat gateways, each with the parameters
    it needs and how a user signs in (``testMode`` only when the server has a test provider)."""
    return {
        "tenant": tenant,
        "application": application.name,
        "gateways": [
            {
                "id": spec.id,
                "parameters": list(spec.required_parameters),
                "authentication": _authentication(spec, test_provider),
            }
            for spec in application.gateways
            if spec.type == "chat"
        ],
    }


def _page(config: dict[str, Any]) -> str:
    # "</" cannot end the script element early; "&" and "<" stay valid JSON when escaped.
    data = json.dumps(config).replace("<", "\\u003c").replace("&", "\\u0026")
    title = html.escape(f"{config['application']} · Sluice chat")
    return _asset("index.html").replace("{{title}}", title).replace("{{config}}", data)


def _blueprint(runtime: GatewayRuntime) -> Blueprint:
    ui = Blueprint("ui", __name__)

    @ui.get("/ui/_assets/<name>")
    async def asset(name: str) -> Response:
        content_type = _ASSETS.get(name)
        if content_type is None:
            raise NotFound(f"no file {name} in the chat page")
        return Response(_asset(name), content_type=content_type, headers=_HEADERS)

    @ui.get("/ui")
    @ui.get("/ui/")
    async def index() -> Response:
        links = "".join(
            f'<li><a href="/ui/{html.escape(t)}/{html.escape(a)}">{html.escape(t)}/'
            f"{html.escape(a)}</a></li>"
            for (t, a), app in sorted(runtime.apps.items())
            if any(spec.type == "chat" for spec in app.gateways)
        )
        body = (
            '<!doctype html><meta charset="utf-8"><title>Sluice chat</title>'
            '<link rel="stylesheet" href="/ui/_assets/chat.css">'
            "<main class=index><h1>Chat pages</h1>"
            f"<ul>{links or '<li>no application has a chat gateway</li>'}</ul></main>"
        )
        return Response(body, content_type="text/html; charset=utf-8", headers=_HEADERS)

    @ui.get("/ui/<tenant>/<application>")
    async def page(tenant: str, application: str) -> Response:
        app = runtime.apps.get((tenant, application))
        if app is None:
            raise NotFound(f"application {application} of tenant {tenant} not found")
        config = page_config(tenant, app, test_provider=runtime.settings.test_provider is not None)
        if not config["gateways"]:
            raise NotFound(f"application {application} of tenant {tenant} has no chat gateway")
        return Response(_page(config), content_type="text/html; charset=utf-8", headers=_HEADERS)

    return ui


def register(app: Quart, runtime: GatewayRuntime) -> None:
    """Serve the chat page from ``app`` when ``runtime.settings.ui`` is on; else do nothing."""
    if runtime.settings.ui:
        app.register_blueprint(_blueprint(runtime))
