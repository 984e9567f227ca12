"""``sluice init NAME``: a new application folder from a template, ready for ``sluice run``.

Two templates: ``processor`` (a Python processor behind produce, consume and service gateways)
and ``chat`` (a chat gateway and a processor that streams its answer), each with a unit test of
its agent run in memory by ``sluice.testing`` (``pytest tests``). The files are plain
strings below; ``{app}`` is the application id (the folder's name) and ``{module}`` the Python
module named after it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Final

__all__ = ["TEMPLATES", "register", "scaffold"]

_NAME: Final = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")

_PROCESSOR_PIPELINE: Final = """\
# The pipeline: records written to `input` are processed by `answer` and written to `output`.
name: "{app}"
topics:
  - name: {app}-input
    creation-mode: create-if-not-exists
  - name: {app}-output
    creation-mode: create-if-not-exists
pipeline:
  - name: "Answer"
    id: answer
    type: python-processor
    input: {app}-input
    output: {app}-output
    configuration:
      className: {module}.Answer
      greeting: "You said"
    errors:
      retries: 3
      on-failure: skip
"""

_PROCESSOR_GATEWAYS: Final = """\
gateways:
  # HTTP POST or WebSocket: write to the input topic, with the session as a header.
  - id: input
    type: produce
    topic: {app}-input
    parameters: [sessionId]
    produce-options:
      headers:
        - key: langstream-client-session-id
          value-from-parameters: sessionId

  # WebSocket (or Server-Sent Events): the answers of one session.
  - id: output
    type: consume
    topic: {app}-output
    parameters: [sessionId]
    consume-options:
      filters:
        headers:
          - key: langstream-client-session-id
            value-from-parameters: sessionId

  # HTTP request/reply: waits for the answer to this request.
  - id: ask
    type: service
    service-options:
      input-topic: {app}-input
      output-topic: {app}-output
"""

_PROCESSOR_CODE: Final = '''\
"""The agent of {app}: answers every record.

Headers of the input (the session id, the service gateway's request id) are carried to the
output by the runtime, so replies find their way back without code.
"""

from __future__ import annotations

from typing import Any

from sluice import AgentContext, Processor, Record


class Answer(Processor):
    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        self.greeting = config.get("greeting", "You said")

    def process(self, record: Record) -> Record:
        return record.with_value(f"{{self.greeting}}: {{record.value}}")
'''

_PROCESSOR_TEST: Final = '''\
"""Unit tests of the agent, run in memory by sluice.testing: no Kafka, no worker (``pytest``).

``from_application`` reads the agent's className, configuration and errors policy from
pipeline.yaml, so the test runs the agent as it is deployed.
"""

from __future__ import annotations

from pathlib import Path

from sluice.testing import AgentHarness, run_processor

APP = Path(__file__).resolve().parent.parent
SESSION = "langstream-client-session-id"


def test_answer_replies_in_the_same_session() -> None:
    harness = AgentHarness.from_application(APP, "answer")
    results = run_processor(harness, [{{"value": "hello", "headers": {{SESSION: "s1"}}}}])
    assert results.values == ["You said: hello"]
    assert results.outputs[0].headers[SESSION] == "s1"


def test_the_greeting_comes_from_the_configuration() -> None:
    harness = AgentHarness.from_application(APP, "answer", config={{"greeting": "Echo"}})
    assert run_processor(harness, ["hi"]).values == ["Echo: hi"]
'''

_PROCESSOR_README: Final = """\
# {app}

Made with `sluice init`. Run it (a local Kafka is started for you):

```bash
sluice run {path}
```

Then, from another shell:

```bash
# request/reply
curl -X POST -H 'Content-Type: application/json' -d '{{"value": "hello"}}' \\
  http://127.0.0.1:8091/api/gateways/service/default/{app}/ask
# write for session s1, and watch that session's answers
sluice gateway consume {app} output -p sessionId=s1 &
sluice gateway produce {app} input -p sessionId=s1 -v hello
```

Edit `python/{module}.py` (the agent), `pipeline.yaml` (topics and agents) and `gateways.yaml`.
`sluice validate {path}` checks the files; `sluice plan {path}` shows what runs.
`pytest tests` runs the agent's unit tests in memory (`sluice.testing`, no Kafka needed).
"""

_CHAT_PIPELINE: Final = """\
# A chat: questions from the chat gateway, answers streamed back in pieces.
name: "{app}"
topics:
  - name: {app}-questions
    creation-mode: create-if-not-exists
  - name: {app}-answers
    creation-mode: create-if-not-exists
pipeline:
  - name: "Assistant"
    id: assistant
    type: python-processor
    input: {app}-questions
    output: {app}-answers
    configuration:
      className: {module}.Assistant
      stream-to-topic: {app}-answers
"""

_CHAT_GATEWAYS: Final = """\
gateways:
  - id: chat
    type: chat
    parameters: [sessionId]
    chat-options:
      questions-topic: {app}-questions
      answers-topic: {app}-answers
      headers:
        - key: langstream-client-session-id
          value-from-parameters: sessionId
"""

_CHAT_CODE: Final = '''\
"""The assistant of {app}: streams its answer, a piece at a time.

Each piece is a record with the question's headers plus ``stream-id`` (one per answer),
``stream-index`` (0, 1, 2...) and ``stream-last-message`` (``true`` on the last piece): the chat
page and ``sluice gateway chat`` show the answer growing. Replace ``pieces`` with your model's
streaming client.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sluice import AgentContext, Processor, Record


async def pieces(question: str) -> AsyncIterator[str]:
    words = f"You asked: {{question}}. This answer arrives one word at a time.".split(" ")
    for index, word in enumerate(words):
        await asyncio.sleep(0.1)
        yield word if index == len(words) - 1 else word + " "


class Assistant(Processor):
    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        self.topic = config["stream-to-topic"]
        self.producer = context.get_topic_producer()

    async def process(self, record: Record) -> Record:
        stream_id, index, previous = str(uuid.uuid4()), 0, None
        async for piece in pieces(str(record.value)):
            if previous is not None:
                await self.producer.awrite(self.topic, _piece(record, previous, stream_id, index))
                index += 1
            previous = piece
        return _piece(record, previous or "", stream_id, index, last=True)


def _piece(question: Record, text: str, stream_id: str, index: int, last: bool = False) -> Record:
    return Record(
        text,
        headers={{
            **question.headers,
            "stream-id": stream_id,
            "stream-index": str(index),
            "stream-last-message": str(last).lower(),
        }},
    )
'''

_CHAT_TEST: Final = '''\
"""Unit tests of the assistant, run in memory by sluice.testing: no Kafka, no worker
(``pytest``). The pieces it streams with the topic producer are in ``results.topic_writes``.
"""

from __future__ import annotations

from pathlib import Path

from sluice.testing import AgentHarness, run_processor

APP = Path(__file__).resolve().parent.parent
SESSION = "langstream-client-session-id"


def test_the_answer_streams_in_pieces_of_one_session() -> None:
    harness = AgentHarness.from_application(APP, "assistant")
    results = run_processor(harness, [{{"value": "hi", "headers": {{SESSION: "s1"}}}}])
    pieces = [record for _, record in results.topic_writes] + results.outputs
    assert "".join(p.value for p in pieces) == (
        "You asked: hi. This answer arrives one word at a time."
    )
    assert {{p.headers[SESSION] for p in pieces}} == {{"s1"}}
    assert [p.headers["stream-index"] for p in pieces] == [str(i) for i in range(len(pieces))]
    assert pieces[-1].headers["stream-last-message"] == "true"
'''

_CHAT_README: Final = """\
# {app}

Made with `sluice init --template chat`. Run it with the chat page:

```bash
sluice run {path} --ui
```

Open http://127.0.0.1:8091/ui/default/{app}, or chat from a shell:

```bash
sluice gateway chat {app} chat -p sessionId=s1
```

Edit `python/{module}.py` (the assistant), `pipeline.yaml` and `gateways.yaml`.
`pytest tests` runs the assistant's unit tests in memory (`sluice.testing`, no Kafka needed).
"""

TEMPLATES: Final = {
    "processor": {
        "pipeline.yaml": _PROCESSOR_PIPELINE,
        "gateways.yaml": _PROCESSOR_GATEWAYS,
        "python/{module}.py": _PROCESSOR_CODE,
        "tests/test_{module}.py": _PROCESSOR_TEST,
        "README.md": _PROCESSOR_README,
    },
    "chat": {
        "pipeline.yaml": _CHAT_PIPELINE,
        "gateways.yaml": _CHAT_GATEWAYS,
        "python/{module}.py": _CHAT_CODE,
        "tests/test_{module}.py": _CHAT_TEST,
        "README.md": _CHAT_README,
    },
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = commands.add_parser(
        "init",
        help="create a new application folder from a template",
        description="Create the folder NAME with a working application: pipeline.yaml, "
        "gateways.yaml, a Python agent, a unit test of it (pytest tests) and a README saying "
        "how to run and call it. The folder's name is the application id (lowercase letters, "
        "digits and dashes).",
        epilog="templates:\n  processor  a processor behind produce, consume and service "
        "gateways (default)\n  chat       a chat gateway and an assistant that streams its "
        "answer word by word",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("name", metavar="NAME", help="the folder to create (e.g. my-app)")
    init.add_argument(
        "-t",
        "--template",
        choices=sorted(TEMPLATES),
        default="processor",
        help="what to start from (default: processor)",
    )
    init.set_defaults(handler=_init)


def scaffold(directory: Path, template: str, *, shown: str | None = None) -> list[Path]:
    """Write ``template`` into ``directory`` (created; it must not exist or be empty); the
    files written. ValueError for a bad name, an unknown template or a folder in use."""
    app = directory.resolve().name
    if not _NAME.match(app):
        raise ValueError(
            f"{app!r} cannot be an application id: use lowercase letters, digits and dashes, "
            "starting with a letter (at most 40 characters)"
        )
    files = TEMPLATES.get(template)
    if files is None:
        raise ValueError(f"unknown template {template!r} (known: {', '.join(sorted(TEMPLATES))})")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ValueError(f"{directory} already exists and is not an empty folder")
    values = {"app": app, "module": app.replace("-", "_"), "path": shown or str(directory)}
    written = []
    for name, text in files.items():
        path = directory / name.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(**values), encoding="utf-8")
        written.append(path)
    return written


def _init(args: argparse.Namespace) -> int:
    directory = Path(args.name)
    try:
        written = scaffold(directory, args.template, shown=args.name)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = directory.resolve().name
    names = ", ".join(str(p.relative_to(directory)) for p in written)
    print(f"created {args.name}/ ({args.template} template): {names}")
    print("next:")
    if args.template == "chat":
        print(f"  sluice run {args.name} --ui")
        print(f"  open http://127.0.0.1:8091/ui/default/{app}")
    else:
        print(f"  sluice run {args.name}")
        print(
            "  curl -X POST -H 'Content-Type: application/json' -d '{\"value\": \"hello\"}' "
            f"http://127.0.0.1:8091/api/gateways/service/default/{app}/ask"
        )
    return 0
