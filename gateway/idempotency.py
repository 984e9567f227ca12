"""Idempotency keys of produce requests: a retry of an acknowledged request is not written again.

A client that got no answer, or a 503, cannot know whether its records were written (Kafka may
acknowledge them after the gateway's deadline). With a key (the ``Idempotency-Key`` header, or
the ``id`` of a structured CloudEvent), the gateway remembers the outcome of the first request:

- a retry after the first was acknowledged, even late, answers OK and writes nothing;
- a retry while the first is still waiting for Kafka waits for the same acknowledgement;
- after the first failed (nothing acknowledged), the retry writes again, as without a key;
- the same key with another body is refused (422): the key was reused by mistake.

Keys live in memory, per gateway process, scoped by gateway and caller, and are bounded: at most
``max_keys`` of them for at most ``ttl`` seconds, the oldest forgotten first. A retry that reaches
another gateway replica, or comes after its key was forgotten, is written again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from gateway.errors import GatewayError

__all__ = [
    "IDEMPOTENCY_HEADER",
    "MAX_KEY_LENGTH",
    "IdempotencyKeys",
    "KeyReused",
    "fingerprint",
]

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
MAX_KEY_LENGTH: Final = 256

T = TypeVar("T")


class KeyReused(GatewayError, ValueError):
    """An idempotency key already used for a different request (422)."""

    status = 422


def fingerprint(*parts: bytes | str | None) -> bytes:
    """A digest of what makes two requests the same request (content type, body...)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = b"\x00" if part is None else part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


@dataclass
class _Entry(Generic[T]):
    fingerprint: bytes
    outcome: asyncio.Future[T]
    created: float


class IdempotencyKeys(Generic[T]):
    """Outcomes of keyed requests, by key, bounded in count and age.

    ``T`` is what a first request's write yields once acknowledged (its send results).
    """

    def __init__(
        self,
        *,
        max_keys: int = 10_000,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        if ttl <= 0:
            raise ValueError("ttl must be greater than 0")
        self.max_keys = max_keys
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        self._expire()
        return key in self._entries

    async def once(
        self,
        key: Hashable,
        digest: bytes,
        write: Callable[[], Awaitable[asyncio.Future[T]]],
        wait: Callable[[asyncio.Future[T]], Awaitable[T]],
    ) -> bool:
        """Write for ``key`` unless a request with it was acknowledged or is under way.

        ``write`` hands the records to Kafka and returns the future of their acknowledgement;
        ``wait`` waits for such a future within the request's deadline (raising the request's
        error). True when this call wrote, False when it answers for an earlier request.
        """
        self._expire()
        entry = self._entries.get(key)
        if entry is not None:
            if entry.fingerprint != digest:
                raise KeyReused(
                    f"the {IDEMPOTENCY_HEADER} was already used for a different request"
                )
            await wait(entry.outcome)
            return False
        outcome: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        outcome.add_done_callback(self._settled(key))
        entry = _Entry(digest, outcome, self._clock())
        self._entries[key] = entry
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
        try:
            acks = await write()
        except BaseException as error:
            if not outcome.done():
                outcome.set_exception(error)
            raise
        # The acknowledgement may come after this request's deadline: the entry waits for it,
        # so a retry then answers OK instead of writing the records a second time.
        acks.add_done_callback(lambda done: _copy(done, outcome))
        await wait(outcome)
        return True

    def _settled(self, key: Hashable) -> Callable[[asyncio.Future[T]], None]:
        def settled(outcome: asyncio.Future[T]) -> None:
            if outcome.cancelled() or outcome.exception() is not None:
                # Nothing acknowledged: a retry writes again. The exception is retrieved here,
                # so asyncio does not report it as never retrieved.
                entry = self._entries.get(key)
                if entry is not None and entry.outcome is outcome:
                    del self._entries[key]

        return settled

    def _expire(self) -> None:
        horizon = self._clock() - self.ttl
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.created > horizon:
                break
            del self._entries[key]


def _copy(source: asyncio.Future[T], target: asyncio.Future[T]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif (error := source.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())
