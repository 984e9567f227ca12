"""User agent objects adapted to the runtime's protocols, decided once when they are loaded.

For each hook the adapter looks, once, at whether the object has it (LangStream classes need not
subclass anything), whether it is ``async def`` (awaited on the loop) or ``def`` (run with
``asyncio.to_thread`` so it never blocks the loop), and how many positional arguments it
declares: LangStream called ``init(config, context)`` or ``init(config)`` and truncated every
call to the declared arity, and so does this.

Records: subclasses of :class:`sluice.sdk.Agent` get :class:`sluice.Record` and a
:class:`sluice.sdk.AgentContext`; everything else is LangStream-style and gets
:class:`langstream.SimpleRecord` and a context satisfying :class:`langstream.AgentContext`.
Whatever a hook returns is normalised to ``list[sluice.Record]``: None, a record, or a list of
``sluice.Record`` / LangStream records / dicts / ``(value, key, headers, origin, timestamp)``
tuples, possibly behind a ``concurrent.futures.Future`` or an awaitable. Headers are not merged
here: the runtime carries an input's headers to its outputs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, cast

from langstream.api import AgentContext as LangStreamAgentContext
from langstream.api import Record as LangStreamRecord
from langstream.api import RecordType
from langstream.api import TopicProducer as LangStreamTopicProducerABC
from langstream.util import SimpleRecord
from sluice.application.model import ComponentType
from sluice.record import Record
from sluice.sdk import Agent, AgentContext, ASGIApp, Service, TopicProducer
from workers.agents import LoadedAgent
from workers.errors import AgentLoadError

_FIELDS = ("value", "key", "headers", "origin", "timestamp")


class Hook:
    """One hook of a user object, looked at once: present or not, async or sync, its arity.

    With ``unless_inherited_from``, a hook the object's class inherits unchanged from that base
    class counts as absent (``sluice.sdk.Service`` has no-op ``app()`` and ``main()``).
    """

    __slots__ = ("arity", "function", "is_async", "name")

    def __init__(
        self, instance: object, name: str, *, unless_inherited_from: type | None = None
    ) -> None:
        function = getattr(instance, name, None)
        base = unless_inherited_from
        if (
            base is not None
            and isinstance(instance, base)
            and getattr(type(instance), name, None) is getattr(base, name)
        ):
            function = None
        self.name = name
        self.function: Callable[..., Any] | None = function if callable(function) else None
        self.is_async = self.function is not None and inspect.iscoroutinefunction(self.function)
        self.arity = _arity(self.function) if self.function is not None else 0

    @property
    def present(self) -> bool:
        return self.function is not None

    async def __call__(self, *args: Any) -> Any:
        """Call the hook (nothing when absent) and resolve a returned future or awaitable."""
        if self.function is None:
            return None
        if self.arity is not None:
            args = args[: self.arity]
        if self.is_async:
            result = await self.function(*args)
        else:
            result = await asyncio.to_thread(self.function, *args)
        return await resolve(result)


def _arity(function: Callable[..., Any]) -> int | None:
    """Positional parameters declared (None: takes any number, or unknown)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            count += 1
    return count


async def resolve(result: Any) -> Any:
    """The value behind a ``concurrent.futures.Future`` or an awaitable, else ``result``."""
    if isinstance(result, concurrent.futures.Future):
        return await asyncio.wrap_future(result)
    if inspect.isawaitable(result):
        return await result
    return result


# Records ------------------------------------------------------------------------------------


def header_value(value: Any) -> str:
    """A header value as the string Sluice headers carry (bytes as UTF-8, others as JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8")
    return json.dumps(value)


def _headers(headers: Any) -> dict[str, str]:
    """Headers as a dict of strings; a header whose value is None is left out."""
    if headers is None:
        return {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    result: dict[str, str] = {}
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(f"a record header must be a (name, value) pair, got {pair!r}")
        name, value = pair
        if not isinstance(name, str):
            raise TypeError(f"a record header name must be a str, got {name!r}")
        if value is not None:
            result[name] = header_value(value)
    return result


def _fields(item: Any) -> tuple[Any, Any, Any, Any, Any]:
    """(value, key, headers, origin, timestamp) of any record shape LangStream accepted."""
    if isinstance(item, LangStreamRecord):
        return item.value(), item.key(), item.headers(), item.origin(), item.timestamp()
    if isinstance(item, Record):
        return item.value, item.key, item.headers, item.origin, item.timestamp
    if isinstance(item, dict):
        unknown = [str(k) for k in item if k not in _FIELDS]
        if unknown:
            raise TypeError(
                f"a record dict has unknown keys {', '.join(unknown)} "
                f"(allowed: {', '.join(_FIELDS)})"
            )
        if "value" not in item:
            raise TypeError("a record dict needs a 'value' key")
        return (
            item["value"],
            item.get("key"),
            item.get("headers"),
            item.get("origin"),
            item.get("timestamp"),
        )
    if isinstance(item, tuple | list):
        if not 1 <= len(item) <= len(_FIELDS):
            raise TypeError(
                f"a record tuple has {len(item)} items: expected 1 to 5 "
                "(value, key, headers, origin, timestamp)"
            )
        value, key, headers, origin, timestamp = (*item, None, None, None, None)[:5]
        return value, key, headers, origin, timestamp
    raise TypeError(
        f"unsupported record type {type(item).__qualname__}: expected sluice.Record, "
        "a langstream Record (SimpleRecord), a dict or a (value, key, headers, origin, "
        "timestamp) tuple"
    )


def to_record(item: Any) -> Record:
    """A ``sluice.Record`` from any record shape user code may return."""
    if isinstance(item, Record):
        if all(isinstance(v, str) for v in item.headers.values()):
            return item
        return replace(item, headers=_headers(item.headers))
    value, key, headers, origin, timestamp = _fields(item)
    return Record(value, key, _headers(headers), origin, timestamp)


def to_langstream(item: Any) -> LangStreamRecord:
    """A LangStream record: ``item`` itself if it is one, else a ``SimpleRecord`` of its fields."""
    if isinstance(item, LangStreamRecord):
        return item
    value, key, headers, origin, timestamp = _fields(item)
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    return SimpleRecord(value, key, pairs, origin, timestamp)


def _items(result: Any, hook: str) -> list[Any]:
    """The records of a hook's result: None, one record, or a list (tuple, iterator) of them."""
    if result is None:
        return []
    if isinstance(result, Record | LangStreamRecord):
        return [result]
    if isinstance(result, list | tuple | Iterator):
        return list(result)
    raise TypeError(
        f"{hook}() returned {type(result).__qualname__}: expected None, a record or a list of "
        "records (sluice.Record, SimpleRecord, dict or tuple)"
    )


def to_records(result: Any, hook: str) -> list[Record]:
    """A hook's (resolved) result as ``list[sluice.Record]``; TypeError for other shapes."""
    return [to_record(item) for item in _items(result, hook)]


# The context LangStream-style code gets ------------------------------------------------------


class LangStreamTopicProducer(LangStreamTopicProducerABC):
    """``context.get_topic_producer()`` for LangStream code: records in any LangStream shape."""

    def __init__(self, producer: TopicProducer) -> None:
        self._producer = producer

    def write(self, topic: str, record: RecordType) -> concurrent.futures.Future[None]:
        """Send from sync code; the future completes when Kafka acknowledged the record."""
        return self._producer.write(topic, to_record(record))

    async def awrite(self, topic: str, record: RecordType) -> None:
        """Send from async code; returns when Kafka acknowledged the record."""
        await self._producer.awrite(topic, to_record(record))


class LangStreamContext(LangStreamAgentContext):
    """The context given to LangStream-style ``init(config, context)``.

    Has LangStream's ``get_persistent_state_directory()`` and ``get_topic_producer()`` and, as a
    Sluice addition, the ``agent_id``, ``tenant``, ``application``, ``port`` and ``globals`` of
    :class:`sluice.sdk.AgentContext`.
    """

    def __init__(self, context: AgentContext) -> None:
        self._context = context
        self._producer: LangStreamTopicProducer | None = None
        self.agent_id = context.agent_id
        self.tenant = context.tenant
        self.application = context.application
        self.port = context.port
        self.globals = context.globals

    def get_persistent_state_directory(self) -> str | None:
        return self._context.get_persistent_state_directory()

    def get_topic_producer(self) -> LangStreamTopicProducer:
        if self._producer is None:
            self._producer = LangStreamTopicProducer(self._context.get_topic_producer())
        return self._producer


# Adapted agents ------------------------------------------------------------------------------

ToUser = Callable[[Record], Any]


class _Adapted:
    def __init__(self, instance: object, context: object, to_user: ToUser) -> None:
        self.instance = instance
        """The user's object."""
        self._context = context
        self._to_user = to_user
        self._init = Hook(instance, "init")
        self._start = Hook(instance, "start")
        self._close = Hook(instance, "close")

    @property
    def required(self) -> tuple[Hook, ...]:
        """The hooks of which the component needs at least one."""
        return ()

    async def init(self, config: dict[str, Any]) -> None:
        await self._init(config, self._context)

    async def start(self) -> None:
        await self._start()

    async def close(self) -> None:
        await self._close()


class AdaptedProcessor(_Adapted):
    def __init__(self, instance: object, context: object, to_user: ToUser) -> None:
        super().__init__(instance, context, to_user)
        self._process = Hook(instance, "process")

    @property
    def required(self) -> tuple[Hook, ...]:
        return (self._process,)

    async def process(self, record: Record) -> list[Record]:
        return to_records(await self._process(self._to_user(record)), "process")


class AdaptedSink(_Adapted):
    def __init__(self, instance: object, context: object, to_user: ToUser) -> None:
        super().__init__(instance, context, to_user)
        self._write = Hook(instance, "write")

    @property
    def required(self) -> tuple[Hook, ...]:
        return (self._write,)

    async def write(self, record: Record) -> None:
        await self._write(self._to_user(record))


class SluiceSource(_Adapted):
    """A Sluice SDK source: ``commit(records)`` once per acknowledged batch."""

    def __init__(self, instance: object, context: object, to_user: ToUser) -> None:
        super().__init__(instance, context, to_user)
        self._read = Hook(instance, "read")
        self._commit = Hook(instance, "commit")
        self._permanent_failure = Hook(instance, "permanent_failure")

    @property
    def required(self) -> tuple[Hook, ...]:
        return (self._read,)

    async def read(self) -> list[Record]:
        return to_records(await self._read(), "read")

    async def commit(self, records: list[Record]) -> None:
        await self._commit(records)

    async def permanent_failure(self, record: Record, error: Exception) -> None:
        await self._permanent_failure(record, error)


class LangStreamSource(SluiceSource):
    """A LangStream source: ``commit(record)`` once per record, with the record it returned.

    LangStream handed ``commit`` and ``permanent_failure`` the record ``read`` returned (a dict
    or tuple wrapped in a ``SimpleRecord``), so the records read are kept until then.
    """

    def __init__(self, instance: object, context: object, to_user: ToUser) -> None:
        super().__init__(instance, context, to_user)
        # id(sluice record) -> (that record, which keeps the id unique; what read() returned)
        self._pending: dict[int, tuple[Record, LangStreamRecord]] = {}

    async def read(self) -> list[Record]:
        records: list[Record] = []
        for item in _items(await self._read(), "read"):
            original = to_langstream(item)
            record = to_record(original)
            self._pending[id(record)] = (record, original)
            records.append(record)
        return records

    def _original(self, record: Record) -> LangStreamRecord:
        pending = self._pending.pop(id(record), None)
        return pending[1] if pending is not None else to_langstream(record)

    async def commit(self, records: list[Record]) -> None:
        for record in records:
            await self._commit(self._original(record))

    async def permanent_failure(self, record: Record, error: Exception) -> None:
        await self._permanent_failure(self._original(record), error)


class AdaptedService(_Adapted):
    """``app()`` (Sluice: an ASGI app, or None) and/or ``main()`` (LangStream: runs forever).

    LangStream only knew ``main()``: a LangStream-style object that has one runs it, even if it
    also has an ``app`` (often the very ASGI app its ``main()`` serves). ``app`` counts only as
    a method, never as an ASGI application stored in an attribute of that name.
    """

    def __init__(self, instance: object, context: object, to_user: ToUser) -> None:
        super().__init__(instance, context, to_user)
        self._main = Hook(instance, "main", unless_inherited_from=Service)
        app = Hook(instance, "app", unless_inherited_from=Service)
        langstream_main = self._main.present and not isinstance(instance, Agent)
        if langstream_main or not inspect.ismethod(app.function):
            app = Hook(None, "app")
        self._app = app
        self._resolved_app: ASGIApp | None = None

    @property
    def required(self) -> tuple[Hook, ...]:
        return (self._app, self._main)

    async def start(self) -> None:
        await super().start()
        if self._app.is_async:
            self._resolved_app = cast("ASGIApp | None", await self._app())

    def app(self) -> ASGIApp | None:
        if self._app.function is None or self._app.is_async:
            return self._resolved_app
        return cast("ASGIApp | None", self._app.function())

    def main(self) -> None:
        """Run the user's ``main()`` in the calling thread (the process's main thread)."""
        if self._main.function is None:
            raise RuntimeError(
                f"{type(self.instance).__qualname__}: app() returned None and there is no main()"
            )
        if self._main.is_async:
            asyncio.run(self._main.function())
        else:
            self._main.function()


_NEEDS: dict[ComponentType, str] = {
    "processor": "process()",
    "source": "read()",
    "sink": "write()",
    "service": "app() or main()",
}


def adapt(
    instance: object,
    component: ComponentType,
    context: AgentContext,
    *,
    agent_id: str,
    class_name: str | None = None,
) -> LoadedAgent:
    """``instance`` behind the runtime protocol of ``component``.

    Raises :class:`AgentLoadError` when it lacks the hook its component needs (``process``,
    ``read``, ``write``, or ``app``/``main`` for a service).
    """
    sluice_style = isinstance(instance, Agent)
    user_context: object = context if sluice_style else LangStreamContext(context)
    to_user: ToUser = _same if sluice_style else to_langstream
    adapted: AdaptedProcessor | AdaptedSink | SluiceSource | AdaptedService
    if component == "processor":
        adapted = AdaptedProcessor(instance, user_context, to_user)
    elif component == "sink":
        adapted = AdaptedSink(instance, user_context, to_user)
    elif component == "source":
        source = SluiceSource if sluice_style else LangStreamSource
        adapted = source(instance, user_context, to_user)
    else:
        adapted = AdaptedService(instance, user_context, to_user)
    if not any(hook.present for hook in adapted.required):
        raise AgentLoadError(
            agent_id,
            class_name,
            f"{type(instance).__qualname__} has no {_NEEDS[component]} method, "
            f"which a {component} needs",
        )
    return adapted


def _same(record: Record) -> Record:
    return record
