"""LangStream's ``http-request`` agent, and the HTTP client the HTTP agents share.

``http-request`` calls a URL for each record: the query-string values, the header values and
the body are Mustache templates (:mod:`sluice.templates`) rendered over the record's view; the
answer is written to ``output-field`` (a JSON object as a dict, anything else as text). An
answer with status 400 or more, a server that cannot be reached, a request slower than
``timeout-seconds`` or a template naming a missing field fails the record, so the agent's
``errors`` policy decides what happens to it.

The client is httpx's: one per agent, made at ``start`` and closed at ``close``, so connections
and (with ``handle-cookies``) cookies are kept from one record to the next, as LangStream's Java
client kept them.
"""

from __future__ import annotations

import asyncio
import json
from http.cookiejar import DefaultCookiePolicy
from typing import Any, ClassVar
from urllib.parse import quote_plus

import httpx

from sluice.application.builtin_config import read_configuration
from sluice.errors import SluiceError
from sluice.record import Record
from sluice.templates import Template, compile_template
from workers.builtin.records import (
    parse_field_name,
    set_field,
    template_view,
    to_record,
    to_working,
)


class HttpAgentError(SluiceError, RuntimeError):
    """An HTTP agent's call failed: an error status, a server that cannot be reached, a
    timeout, an answer the agent cannot read. The record fails (``errors`` policy)."""


def http_client(config: dict[str, Any]) -> httpx.AsyncClient:
    """The client of an HTTP agent: redirects, cookies and timeout as ``config`` says.

    Without ``handle-cookies`` no cookie is kept (not even across the redirects of one call).
    """
    client = httpx.AsyncClient(
        follow_redirects=config["allow-redirects"],
        timeout=httpx.Timeout(float(config["timeout-seconds"])),
    )
    if not config["handle-cookies"]:
        # A policy that allows no domain: the jar neither stores nor sends a cookie.
        client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client


def compile_templates(templates: dict[str, str]) -> dict[str, Template]:
    return {name: compile_template(text) for name, text in templates.items()}


def form_encoded(text: str) -> str:
    """``text`` as Java's ``URLEncoder`` writes it (space as ``+``; ``*`` kept, ``~`` encoded)."""
    return quote_plus(text, safe="*").replace("~", "%7E")


def failure(method: str, url: str, error: Exception) -> HttpAgentError:
    """An :class:`HttpAgentError` for a call that got no answer (unreachable, timed out...)."""
    reason = str(error) or type(error).__name__
    return HttpAgentError(f"{method} {url} failed: {reason}")


def check_status(method: str, url: str, response: httpx.Response, body: str) -> None:
    """Raise :class:`HttpAgentError` for an answer with status 400 or more."""
    if response.status_code >= 400:
        excerpt = body[:200] + ("..." if len(body) > 200 else "")
        raise HttpAgentError(
            f"{method} {url} answered {response.status_code} {response.reason_phrase}: {excerpt}"
        )


class HttpClientAgent:
    """What the HTTP agents share: one httpx client, made at ``start`` from the checked
    configuration (``self.config``) and closed at ``close``."""

    agent_type: ClassVar[str]
    config: dict[str, Any]
    _client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = http_client(self.config)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise HttpAgentError(f"{self.agent_type} called before start()")
        return self._client


class HttpRequest(HttpClientAgent):
    """The ``http-request`` processor (see the module's documentation)."""

    agent_type = "http-request"

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("http-request", config)
        self.config = checked
        self.url: str = checked["url"]
        self.method: str = checked["method"].upper()
        self.output_field: str = checked["output-field"]
        parse_field_name(self.output_field)
        self.timeout = float(checked["timeout-seconds"])
        self.query = compile_templates(checked["query-string"])
        self.headers = compile_templates(checked["headers"])
        body = checked["body"]
        self.body = None if body is None else compile_template(body)

    async def process(self, record: Record) -> list[Record]:
        client = self.client
        working = to_working(record)
        view = template_view(working)
        url = self.url
        if self.query:
            query = "&".join(
                f"{form_encoded(name)}={form_encoded(template.render(view))}"
                for name, template in self.query.items()
            )
            url += ("&" if "?" in url else "?") + query
        headers = {name: template.render(view) for name, template in self.headers.items()}
        content = None if self.body is None else self.body.render(view).encode("utf-8")
        try:
            async with asyncio.timeout(self.timeout):
                response = await client.request(self.method, url, headers=headers, content=content)
        except (httpx.HTTPError, TimeoutError) as error:
            raise failure(self.method, url, error) from error
        text = response.text
        check_status(self.method, url, response, text)
        set_field(working, _answer(text), self.output_field)
        return [to_record(working, record)]


def _answer(text: str) -> Any:
    """A JSON object answer as a dict; anything else (a JSON array too) as its text."""
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        if isinstance(parsed, dict):
            return parsed
    return text
