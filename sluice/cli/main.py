"""The ``sluice`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sluice import __version__

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    # Imported here: `sluice --version` needs none of them.
    from sluice.cli import app, deploy, gateway, init, kafka, run

    parser = argparse.ArgumentParser(
        prog="sluice",
        description="Run real-time AI pipelines as event streams on Kafka (LangStream-compatible).",
        epilog="start here:\n"
        "  sluice init my-app            a new application from a template\n"
        "  sluice run my-app             run it here (a local Kafka, its workers, the gateway)\n"
        "  sluice gateway --help         talk to its gateways\n"
        "`sluice COMMAND --help` tells more about each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sluice {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    init.register(commands)
    app.register(commands)
    run.register(commands)
    deploy.register(commands)
    kafka.register(commands)
    gateway.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
