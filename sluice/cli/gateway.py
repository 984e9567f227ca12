"""``sluice gateway produce|consume|chat|service``: clients of a running gateway.

The counterpart of LangStream's ``langstream gateway ...`` commands, for the gateway of
``sluice run`` (or any Sluice/LangStream gateway with ``-u``). Answers and records go to stdout,
one JSON document a line; problems go to stderr and the exit status is 1 (2 for a bad command
line). Tokens are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final, TextIO

from rich.console import Console
from rich.markup import escape
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from sluice.client import (
    DEFAULT_TENANT,
    DEFAULT_URL,
    Credentials,
    GatewayClientError,
    Target,
    base_url,
    close_problem,
    converse,
    open_socket,
    parse_pair,
    parse_value,
    post,
    produce_frame,
    produce_request,
)

__all__ = ["register"]

_ENVIRONMENT: Final = """\
environment variables:
  SLUICE_GATEWAY_URL          default for -u/--url (default: http://127.0.0.1:8091, where
                              `sluice run` serves the gateway)
  SLUICE_GATEWAY_CREDENTIALS  default for -c/--credentials (keeps the token out of the
                              shell history and the process list)

values: -v is sent as JSON when it parses as JSON (-v 42 is the number 42, -v '{"q": 1}' an
object), else as a string (-v hello); --string always sends a string, as LangStream's CLI did.
"""

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gateway = commands.add_parser(
        "gateway",
        help="produce, consume, chat or call a service through a running gateway",
        description="Clients of the gateway of `sluice run` (or of any gateway with -u): the "
        "same requests a web page or a service would make.",
        epilog=_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = gateway.add_subparsers(dest="gateway_command", metavar="ACTION", required=True)

    produce = _action(
        actions,
        "produce",
        "write one record through a produce gateway",
        "POST the record to /api/gateways/produce/... (or send one frame on /v1/produce/... "
        "with --protocol ws) and print the gateway's answer.",
        _produce,
    )
    _message_arguments(produce, value_required=True)
    produce.add_argument(
        "--protocol",
        choices=("http", "ws"),
        default="http",
        help="HTTP POST or one WebSocket frame (default: http)",
    )

    consume = _action(
        actions,
        "consume",
        "print the records a consume gateway pushes",
        "Open /v1/consume/... and print every pushed message as one JSON line "
        '({"record": {...}, "offset": TOKEN}) until Ctrl-C, the socket closes, --max records '
        "or --timeout.",
        _consume,
    )
    _position_argument(consume)
    consume.add_argument(
        "-n", "--max", type=_positive_int, metavar="N", help="stop after N records"
    )
    consume.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="stop after SECONDS; with --max, fewer than N records by then is an error",
    )

    chat = _action(
        actions,
        "chat",
        "talk to a chat gateway",
        "Open /v1/chat/..., send every line of stdin as a question (a string value) and print "
        "the answers as they arrive. With -v, send that one question, print the first answer "
        "and exit.",
        _chat,
    )
    _message_arguments(chat, value_required=False)
    _position_argument(chat)
    chat.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for an answer with -v, or after the end of stdin (default: 30)",
    )
    chat.add_argument(
        "--json",
        action="store_true",
        help="print each pushed message as a JSON line instead of the answer's value",
    )

    service = _action(
        actions,
        "service",
        "call a service gateway and print its reply",
        "POST the request to /api/gateways/service/... (a service gateway with input and "
        "output topics) and print the reply as one JSON line.",
        _service,
    )
    _message_arguments(service, value_required=False)
    service.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="how long the gateway waits for the reply (option:timeout; gateway default: 30)",
    )


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
    handler: Handler,
) -> argparse.ArgumentParser:
    parser = actions.add_parser(
        name,
        help=summary,
        description=description,
        epilog=_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "app",
        metavar="APP",
        help="the application id, or its folder (then the id is the folder's name, as `sluice "
        "run` names it)",
    )
    parser.add_argument("gateway", metavar="GATEWAY", help="the gateway id")
    parser.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        type=_pair,
        default=[],
        metavar="NAME=VALUE",
        help="a gateway parameter (param:NAME); repeatable",
    )
    parser.add_argument(
        "-c", "--credentials", metavar="TOKEN", help="credentials for the gateway's provider"
    )
    parser.add_argument(
        "--tc",
        "-tc",
        "--test-credentials",
        dest="test_credentials",
        metavar="TOKEN",
        help="test credentials (the gateway's test provider)",
    )
    parser.add_argument(
        "--auth-header",
        action="store_true",
        help="send -c as an `Authorization: Bearer` header instead of the credentials query "
        "parameter",
    )
    parser.add_argument("-u", "--url", metavar="BASE", help=f"gateway base URL ({DEFAULT_URL})")
    parser.add_argument(
        "--tenant", default=DEFAULT_TENANT, help=f"tenant (default: {DEFAULT_TENANT})"
    )
    parser.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the connection (default: 10)",
    )
    parser.set_defaults(handler=_guarded(handler))
    return parser


def _message_arguments(parser: argparse.ArgumentParser, *, value_required: bool) -> None:
    parser.add_argument(
        "-v", "--value", required=value_required, help="the value (JSON if it parses)"
    )
    parser.add_argument(
        "--string", action="store_true", help="send -v as a string even when it parses as JSON"
    )
    parser.add_argument("-k", "--key", help="the record key (a string)")
    parser.add_argument(
        "--header",
        dest="headers",
        action="append",
        type=_pair,
        default=[],
        metavar="NAME=VALUE",
        help="a record header; repeatable",
    )


def _position_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--position",
        metavar="latest|earliest|TOKEN",
        help="where to start reading: latest (the gateway's default), earliest, or the offset "
        "token of a pushed message (resume after it)",
    )


def _pair(text: str) -> tuple[str, str]:
    try:
        return parse_pair(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds greater than 0: {text!r}")
    return seconds


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return number


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _guarded(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Run ``handler``; its failures are one line on stderr, never a stack trace."""

    def run(args: argparse.Namespace) -> int:
        console = _stderr()
        try:
            target = _target(args)
        except ValueError as error:
            console.print(f"[red]error:[/red] {escape(str(error))}")
            return 2
        args.target = target
        try:
            return asyncio.run(handler(args))
        except GatewayClientError as error:
            message = str(error)
            if target.credentials is not None:
                message = message.replace(target.credentials.token, "***")
            console.print(f"[red]error:[/red] {escape(message)}")
            return 1

    return run


def _target(args: argparse.Namespace) -> Target:
    """The gateway the command line names; ValueError for a bad URL or credentials."""
    url = args.url or os.environ.get("SLUICE_GATEWAY_URL") or DEFAULT_URL
    try:
        base = base_url(url)
    except ValueError as error:
        where = "-u/--url" if args.url else "SLUICE_GATEWAY_URL"
        raise ValueError(f"{where}: {error}") from None
    token = args.credentials or os.environ.get("SLUICE_GATEWAY_CREDENTIALS")
    credentials = None
    if args.test_credentials is not None:
        if args.credentials is not None:
            raise ValueError("pass -c or --tc, not both")
        if args.auth_header:
            raise ValueError("--auth-header sends -c; test credentials go in the query")
        credentials = Credentials(args.test_credentials, test=True)
    elif token:
        credentials = Credentials(token, as_header=args.auth_header)
    elif args.auth_header:
        raise ValueError("--auth-header needs credentials (-c or SLUICE_GATEWAY_CREDENTIALS)")
    app = Path(args.app)
    options: list[tuple[str, str]] = []
    if getattr(args, "position", None):
        options.append(("position", args.position))
    if args.gateway_command == "service" and args.timeout is not None:
        options.append(("timeout", f"{args.timeout:g}"))
    return Target(
        base,
        args.tenant,
        app.resolve().name if app.is_dir() else args.app,
        args.gateway,
        tuple(args.params),
        tuple(options),
        credentials,
    )


def _request(args: argparse.Namespace) -> dict[str, Any]:
    value = None if args.value is None else parse_value(args.value, as_string=args.string)
    return produce_request(value, args.key, dict(args.headers))


def _print(document: Any) -> None:
    print(json.dumps(document), flush=True)


async def _produce(args: argparse.Namespace) -> int:
    target: Target = args.target
    request, within = _request(args), args.connect_timeout
    if args.protocol == "http":
        _print(await post(target, "produce", request, answer_within=60, connect_timeout=within))
        return 0
    answer = await produce_frame(target, request, connect_timeout=within)
    _print(answer)
    if answer.get("status") != "OK":
        raise GatewayClientError(f"{answer.get('status')}: {answer.get('reason')}")
    return 0


async def _consume(args: argparse.Namespace) -> int:
    target: Target = args.target
    count = 0
    async with open_socket(target, "consume", connect_timeout=args.connect_timeout) as socket:
        try:
            async with asyncio.timeout(args.timeout):
                while args.max is None or count < args.max:
                    print(_text(await socket.recv()), flush=True)
                    count += 1
        except TimeoutError:
            if args.max is not None:
                raise GatewayClientError(
                    f"{count} of {args.max} record(s) within {args.timeout:g} s"
                ) from None
        except ConnectionClosed as error:
            problem = close_problem(error)
            if problem is not None:
                raise GatewayClientError(problem) from None
    return 0


async def _service(args: argparse.Namespace) -> int:
    target: Target = args.target
    wait = (args.timeout or 30.0) + 10.0  # the gateway answers 504 first
    _print(
        await post(
            target,
            "service",
            _request(args),
            answer_within=wait,
            connect_timeout=args.connect_timeout,
        )
    )
    return 0


async def _chat(args: argparse.Namespace) -> int:
    target: Target = args.target
    async with open_socket(target, "chat", connect_timeout=args.connect_timeout) as socket:
        try:
            if args.value is not None:
                await socket.send(json.dumps(_request(args)))
                return await _answers(socket, args, _one_question())
            questions: asyncio.Queue[str | None] = asyncio.Queue()
            _read_lines(sys.stdin, questions)
            if sys.stdin.isatty():
                _stderr().print("Type a question and press Enter; Ctrl-D ends.")
            return await _answers(socket, args, questions)
        except ConnectionClosed as error:
            problem = close_problem(error)
            if problem is not None:
                raise GatewayClientError(problem) from None
            return 0


def _one_question() -> asyncio.Queue[str | None]:
    """The questions of ``chat -v``: none left to send (it was sent), then the end."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    queue.put_nowait(None)
    return queue


def _read_lines(stream: TextIO, queue: asyncio.Queue[str | None]) -> None:
    """Lines of ``stream`` into ``queue``, then None, from a daemon thread: a blocked read of
    stdin must not keep the process alive after the socket ends."""
    loop = asyncio.get_running_loop()

    def pump() -> None:
        try:
            for line in stream:
                loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\r\n"))
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:
            pass  # the loop closed: the command is over

    threading.Thread(target=pump, name="sluice-chat-stdin", daemon=True).start()


async def _answers(
    socket: ClientConnection, args: argparse.Namespace, questions: asyncio.Queue[str | None]
) -> int:
    """Print the answers (stdout) and refusals (stderr) of a chat; 1 when one was refused."""
    refused = 0
    sent = 1 if args.value is not None else 0
    async for chat, frame in converse(
        socket,
        questions,
        key=args.key,
        headers=dict(args.headers),
        sent=sent,
        patience=args.timeout,
    ):
        if chat.kind == "refused":
            _stderr().print(f"[red]error:[/red] {escape(chat.reason)}")
            refused += 1
        elif chat.kind != "ack" and args.json:
            print(_text(frame), flush=True)
        elif chat.kind != "ack":
            text = chat.value if isinstance(chat.value, str) else json.dumps(chat.value)
            print(text, end="\n" if chat.kind == "answer" else "", flush=True)
    return 1 if refused else 0


def _text(frame: str | bytes) -> str:
    return frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
