"""What ``sluice run`` prints once its workers are up or have failed: where things are, which
executors are not running and why, and a request to try for each gateway. Pure functions from
the application and its addresses to lines of text."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from sluice.application import Application, Plan
from sluice.application.model import GatewaySpec
from sluice.local import Worker
from sluice.protocol import http_path, param_key

__all__ = ["Line", "gateway_examples", "summary_lines", "ui_url"]

_DEFAULT_URL = "http://127.0.0.1:8091"
_DEFAULT_TENANT = "default"


class Line(NamedTuple):
    """A line of the summary and how to show it: ``"ready"`` (the first line, when every
    executor runs), ``"not-ready"`` (the first line otherwise), ``"problem"`` (an executor not
    running) or ``""`` (plain)."""

    text: str
    style: str = ""


def ui_url(base_url: str, tenant: str, app: Application) -> str | None:
    """The chat page of ``app``, or None when it has no chat gateway."""
    if not any(spec.type == "chat" for spec in app.gateways):
        return None
    return f"{base_url}/ui/{tenant}/{app.name}"


def _client_flags(spec: GatewaySpec, tenant: str, base_url: str) -> list[str]:
    flags = [f"-p {shlex.quote(f'{p}=s1')}" for p in spec.required_parameters]
    if spec.authentication is not None:
        flags.append('-c "$TOKEN"')
    if tenant != _DEFAULT_TENANT:
        flags.append(f"--tenant {shlex.quote(tenant)}")
    if base_url != _DEFAULT_URL:
        flags.append(f"-u {base_url}")
    return flags


def _curl(spec: GatewaySpec, url: str, *, post: bool) -> str:
    words = ["curl"]
    if post:
        words += ["-X POST", "-H 'Content-Type: application/json'", '-d \'{"value": "hello"}\'']
    if spec.authentication is not None:
        words.append('-H "Authorization: Bearer $TOKEN"')
    words.append(shlex.quote(url))
    return " ".join(words)


def gateway_examples(app: Application, tenant: str, base_url: str) -> list[tuple[str, str]]:
    """For each gateway, ``(title, command)``: a curl request or a ``sluice gateway`` command
    that works as printed (``$TOKEN`` stands for the credentials of a guarded gateway)."""
    examples: list[tuple[str, str]] = []
    for spec in app.gateways:
        params = "&".join(f"{param_key(p)}=s1" for p in spec.required_parameters)
        query = f"?{params}" if params else ""
        flags = " ".join(_client_flags(spec, tenant, base_url))
        client = f"sluice gateway {spec.type} {shlex.quote(app.name)} {spec.id} {flags}".strip()
        if spec.type == "produce":
            url = f"{base_url}{http_path('produce', tenant, app.name, spec.id)}{query}"
            examples.append((f"{spec.id} (produce)", _curl(spec, url, post=True)))
        elif spec.type == "service" and spec.service is not None and spec.service.agent_id:
            url = f"{base_url}{http_path('service', tenant, app.name, spec.id)}/{query}"
            title = f"{spec.id} (service, proxy to agent {spec.service.agent_id})"
            examples.append((title, _curl(spec, url, post=False)))
        elif spec.type == "service":
            # Parameters of a service gateway are optional (the brief calls it without them).
            url = f"{base_url}{http_path('service', tenant, app.name, spec.id)}"
            examples.append((f"{spec.id} (service)", _curl(spec, url, post=True)))
        elif spec.type == "consume":
            examples.append((f"{spec.id} (consume)", client))
        else:
            examples.append((f"{spec.id} (chat)", client))
    return examples


def summary_lines(
    app: Application,
    plan: Plan,
    *,
    tenant: str,
    base_url: str,
    bootstrap: str,
    workers: Sequence[Worker],
    ui: bool,
    elapsed: float,
) -> list[Line]:
    """The summary block: application, Kafka, gateway, chat page, workers, the executors that
    are not running and why, then a request to try for each gateway.

    The first line says "Ready" only when every executor runs.
    """
    by_executor: Mapping[str, Worker] = {w.executor: w for w in workers}
    down = [
        (executor, by_executor[executor.id])
        for executor in plan.executors
        if executor.id in by_executor and not by_executor[executor.id].running
    ]
    where = f"{tenant}/{app.name}"
    if down:
        title = Line(
            f"Started in {elapsed:.1f} s: {where}, but {len(down)} of {len(plan.executors)} "
            "executor(s) not running",
            "not-ready",
        )
    else:
        title = Line(f"Ready in {elapsed:.1f} s: {where}", "ready")
    lines = [title, Line(f"  kafka     {bootstrap}")]
    lines.append(Line(f"  gateway   {base_url}  (/healthz, /readyz, /metrics)"))
    page = ui_url(base_url, tenant, app) if ui else None
    if page is not None:
        lines.append(Line(f"  chat page {page}"))
    for executor in plan.executors:
        worker = by_executor.get(executor.id)
        agents = ", ".join(f"{a.id} ({a.type})" for a in executor.agents)
        flow = f"{executor.input_topic or '-'} -> {executor.output_topic or '-'}"
        place = ""
        if worker is not None:
            place = f", pid {worker.pid or '-'}"
            if worker.health_port is not None:
                place += f", metrics http://127.0.0.1:{worker.health_port}/metrics"
            if worker.service_port is not None and worker.running:
                place += f", service http://127.0.0.1:{worker.service_port}"
        lines.append(Line(f"  worker    {executor.id}: {agents}, {flow}{place}"))
    if down:
        lines.append(
            Line(
                "Not running (failed ones restart with backoff, picked up once ready):",
                "problem",
            )
        )
        for executor, worker in down:
            agents = ", ".join(f"{a.id} ({a.type})" for a in executor.agents)
            reason = worker.reason or "no reason known (see its log lines above)"
            lines.append(Line(f"  {executor.id} [{agents}]: {reason}", "problem"))
    examples = gateway_examples(app, tenant, base_url)
    if examples:
        lines.append(Line("Try it:"))
        lines += [Line(f"  {title}: {command}") for title, command in examples]
    if any(spec.authentication is not None for spec in app.gateways):
        lines.append(
            Line(
                "  ($TOKEN: a token of the gateway's provider; with allow-test-mode and "
                "--test-auth, -tc TOKEN / test-credentials=TOKEN)"
            )
        )
    return lines
