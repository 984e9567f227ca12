"""``sluice validate`` and ``sluice plan``, and what every command on an application folder
shares: its arguments, loading it, checking that Sluice can run it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from sluice.application import Application, load_application, plan_application
from sluice.application.agent_types import AGENT_TYPES
from sluice.errors import InvalidApplication


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = commands.add_parser(
        "validate",
        help="check an application folder, its instance and secrets",
        description="Load and validate an application; print every problem found (exit 1) or "
        "a summary (exit 0). Secret values are never printed.",
    )
    app_arguments(validate)
    validate.set_defaults(handler=_validate)

    plan = commands.add_parser(
        "plan",
        help="print the execution plan (topics, executors, fusion)",
        description="Print the plan Sluice computes for an application: the topics to create "
        "(implicit and dead-letter ones included) and the executors, each a fused chain of "
        "agents that runs as one process. Values that came from secrets are printed as "
        "'(a secret value)' unless --show-secrets is given.",
    )
    app_arguments(plan)
    plan.add_argument(
        "-o",
        "--output",
        choices=("json", "yaml"),
        default="yaml",
        help="output format (default: yaml)",
    )
    plan.add_argument(
        "--show-secrets",
        action="store_true",
        help="print the values that came from secrets (hidden by default)",
    )
    plan.set_defaults(handler=_plan)


def app_arguments(parser: argparse.ArgumentParser) -> None:
    """The application folder, its instance and secrets, its id."""
    parser.add_argument("app", metavar="APP_DIR", help="the application folder")
    parser.add_argument("-i", "--instance", metavar="FILE", help="instance.yaml")
    parser.add_argument(
        "-s", "--secrets", metavar="FILE", help="secrets.yaml (kept outside the application folder)"
    )
    parser.add_argument(
        "--app-id", metavar="NAME", help="application id (default: the folder's name)"
    )


def load(args: argparse.Namespace) -> Application | None:
    """Load the application named on the command line; print problems and return None."""
    try:
        app = load_application(
            args.app,
            instance=args.instance,
            secrets=args.secrets,
            environ=dict(os.environ),
            name=args.app_id,
        )
    except InvalidApplication as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    for warning in app.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return app


def _validate(args: argparse.Namespace) -> int:
    app = load(args)
    if app is None or not check_runtime(app):
        return 1
    plan = plan_application(app)
    print(
        f"{app.name}: valid — {len(app.agents)} agent(s) in {len(plan.executors)} executor(s), "
        f"{len(plan.topics)} topic(s), {len(app.gateways)} gateway(s)"
    )
    return 0


def check_runtime(app: Application) -> bool:
    """Whether Sluice can run every agent (its type is one Sluice runs, Java is there for
    camel-source); print problems."""
    from workers.camel import CamelSettings
    from workers.camel.preflight import check_camel

    if app.unsupported:
        runnable = ", ".join(sorted(name for name, kind in AGENT_TYPES.items() if kind.runnable))
        print(f"error: {InvalidApplication(app.unsupported)}", file=sys.stderr)
        print(f"Sluice runs these agent types: {runnable}", file=sys.stderr)
        return False
    java_home = os.environ.get("JAVA_HOME")
    settings = CamelSettings(java_home=Path(java_home) if java_home else None)
    findings = asyncio.run(check_camel(app, settings))
    for warning in findings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in findings.errors:
        print(f"error: {error}", file=sys.stderr)
    return not findings.errors


def _plan(args: argparse.Namespace) -> int:
    app = load(args)
    if app is None:
        return 1
    print(render(plan_application(app).to_dict(show_secrets=args.show_secrets), args.output))
    return 0


def render(data: dict[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()
