"""LangStream-style agents, written as LangStream 0.4 users wrote them (loaded by className)."""

import asyncio
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from langstream import AgentContext, Processor, SimpleRecord, Sink, Source
from langstream import Service as LangStreamService


class Exclamation(Processor):
    """The counter of the LangStream 0.4 announcement: state in the persistent directory."""

    def init(self, config, context: AgentContext):
        self.context = context

    def process(self, record):
        directory = self.context.get_persistent_state_directory()
        counter_file = os.path.join(directory, "counter.txt")
        count = 0
        if os.path.exists(counter_file):
            with open(counter_file) as f:
                count = int(f.read())
        count += 1
        with open(counter_file, "w") as f:
            f.write(str(count))
        return [SimpleRecord(f"{record.value()}!", headers=[("count", count)])]


class Suffix:
    """Subclasses nothing; ``init`` takes the configuration only."""

    def init(self, config):
        self.config = config

    def process(self, record):
        return [SimpleRecord(record.value() + self.config["suffix"])]


class Echo:
    """Returns what it is given, as the LangStream record it got, and keeps it."""

    def __init__(self):
        self.seen = []

    def process(self, record):
        self.seen.append(record)
        return [record]


class Shapes(Processor):
    """Returns each record shape LangStream accepted."""

    def process(self, record):
        return [
            SimpleRecord("simple", key="k1", headers=[("h", "1")], origin="o", timestamp=7),
            {"value": "dict", "key": "k2", "headers": [("h", "2")]},
            ("tuple", "k3", [("h", "3")]),
            ["list"],
        ]


class Headers(Processor):
    def process(self, record):
        return [
            SimpleRecord(
                record.value(),
                headers=[("n", 1), ("b", b"bytes"), ("d", {"a": [1]}), ("s", "s"), ("none", None)],
            )
        ]


class Later(Processor):
    """Returns a concurrent Future of the records, computed in a thread pool."""

    def init(self, config, context):
        self.pool = ThreadPoolExecutor(max_workers=1)

    def process(self, record) -> Future:
        return self.pool.submit(lambda: [{"value": record.value() * 2}])

    def close(self):
        self.pool.shutdown()


class AsyncUpper(Processor):
    async def process(self, record):
        await asyncio.sleep(0)
        return [SimpleRecord(record.value().upper(), key=record.key())]


class Threads:
    """Records the threads its sync hooks run in."""

    def __init__(self):
        self.threads = {}

    def init(self, config, context):
        self.threads["init"] = threading.get_ident()

    def start(self):
        self.threads["start"] = threading.get_ident()

    def process(self, record):
        self.threads["process"] = threading.get_ident()
        return [SimpleRecord(threading.get_ident())]

    def close(self):
        self.threads["close"] = threading.get_ident()


class Forwarder(Processor):
    """Writes to another topic with the topic producer, from sync code."""

    def init(self, config, context):
        self.producer = context.get_topic_producer()

    def process(self, record):
        self.producer.write(
            "audit", {"value": record.value(), "headers": [("seen", True)]}
        ).result()
        return []


class AsyncForwarder(Processor):
    def init(self, config, context):
        self.producer = context.get_topic_producer()

    async def process(self, record):
        await self.producer.awrite("audit", (record.value(), "key"))
        return []


class Odd(Processor):
    def process(self, record):
        return 42


class Numbers(Source):
    """Reads dicts; LangStream calls commit once per record."""

    def init(self, config, context):
        self.left = list(range(config.get("count", 3)))
        self.committed = []
        self.failed = []

    def read(self):
        if not self.left:
            return []
        batch, self.left = self.left[:2], self.left[2:]
        return [{"value": n, "key": str(n)} for n in batch]

    def commit(self, record):
        self.committed.append(record)


class Failing(Source):
    """Keeps LangStream's default ``permanent_failure``, which re-raises."""

    def read(self):
        return [SimpleRecord("x")]


class Handled:
    """A duck-typed source with a ``permanent_failure`` hook."""

    def __init__(self):
        self.given = SimpleRecord("given")
        self.failures = []

    def read(self):
        return [self.given]

    def permanent_failure(self, record, error):
        self.failures.append((record, error))


class Collect(Sink):
    def init(self, config, context):
        self.written = []

    def write(self, record):
        self.written.append(record.value())


class CollectLater(Sink):
    """Returns a Future that completes once the record is 'durable'."""

    def init(self, config, context):
        self.written = []
        self.pool = ThreadPoolExecutor(max_workers=1)

    def write(self, record):
        return self.pool.submit(self.written.append, record.value())

    def close(self):
        self.pool.shutdown()


class Broken(Sink):
    def write(self, record):
        raise ValueError(f"cannot write {record.value()}")


class Main(LangStreamService):
    """A LangStream service: ``main()`` runs the server (here it only notes that it ran)."""

    def init(self, config, context):
        self.ran = threading.Event()
        self.thread = None

    def main(self):
        self.thread = threading.get_ident()
        self.ran.set()


async def asgi(scope, receive, send):
    pass


class MainWithAnApp:
    """Duck-typed service whose ``main()`` would serve ``self.app`` itself."""

    def __init__(self):
        self.app = asgi
        self.ran = False

    def main(self):
        self.ran = True


class AppMethodOnly:
    """Duck-typed, Sluice-like: an ``app()`` method and no ``main()``."""

    def app(self):
        return asgi


class AsyncMain:
    def init(self, config):
        self.ran = False

    async def main(self):
        await asyncio.sleep(0)
        self.ran = True


class NoHooks:
    pass


class Pending(Source):
    """Keeps the records it read in a set until commit() hands each back (identity hashing)."""

    def init(self, config, context):
        self.left = [SimpleRecord("same") for _ in range(config.get("count", 3))]
        self.pending = set()
        self.committed = []

    def read(self):
        batch, self.left = self.left, []
        self.pending.update(batch)
        return batch

    def commit(self, record):
        self.pending.remove(record)
        self.committed.append(record)


class Describe(Processor):
    """Outputs str() of the record it was given, as LangStream agents log it."""

    def process(self, record):
        return [(str(record),)]
