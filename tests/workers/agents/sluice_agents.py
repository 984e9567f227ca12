"""Agents written against the Sluice SDK (loaded by className)."""

import asyncio
import threading

from sluice.record import Record
from sluice.sdk import AgentContext, Processor, Service, Sink, Source


class Upper(Processor):
    """Returns a single Record."""

    def process(self, record: Record) -> Record:
        return record.with_value(record.value.upper())


class DropAll(Processor):
    def process(self, record: Record) -> None:
        return None


class AsyncSplit(Processor):
    def init(self, config, context: AgentContext) -> None:
        self.context = context
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def process(self, record: Record) -> list[Record]:
        await asyncio.sleep(0)
        return [Record(word) for word in record.value.split()]


class Given(Processor):
    """Keeps what it was given, to check that Sluice code gets sluice.Record."""

    def init(self, config, context) -> None:
        self.config = config
        self.context = context
        self.given = []

    def process(self, record: Record) -> list[Record]:
        self.given.append(record)
        return [record]


class Batches(Source):
    def init(self, config, context) -> None:
        self.left = ["a", "b", "c"]
        self.commits = []
        self.failures = []

    def read(self) -> list[Record]:
        batch, self.left = self.left, []
        return [Record(v) for v in batch]

    def commit(self, records: list[Record]) -> None:
        self.commits.append(records)

    async def permanent_failure(self, record: Record, error: Exception) -> None:
        self.failures.append((record, error))


class Written(Sink):
    def init(self, config, context) -> None:
        self.written = []
        self.thread = None

    def write(self, record: Record) -> None:
        self.thread = threading.get_ident()
        self.written.append(record)


async def hello(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


class App(Service):
    def app(self):
        return hello


class AsyncApp(Service):
    async def app(self):
        await asyncio.sleep(0)
        return hello


class MainOnly(Service):
    def init(self, config, context) -> None:
        self.ran = False

    def main(self) -> None:
        self.ran = True


class Nothing(Service):
    """Overrides neither app() nor main()."""
