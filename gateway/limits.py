"""Rate limits: a token bucket (the message rate of one WebSocket) and a per-client limiter of
failed authentications."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FailureLimiter", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; :meth:`take` spends one.

    >>> now = [0.0]
    >>> bucket = TokenBucket(rate=1.0, burst=2, clock=lambda: now[0])
    >>> bucket.take(), bucket.take(), bucket.take()
    (True, True, False)
    >>> now[0] = 1.0
    >>> bucket.take()
    True
    """

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be greater than 0 and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def available(self) -> float:
        """The tokens there are now."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        return self._tokens

    def take(self) -> bool:
        """Spend a token; False when none is left (the caller is over the rate)."""
        if self.available() < 1:
            return False
        self._tokens -= 1
        return True


class FailureLimiter:
    """Failed authentications per client: ``burst`` at once, then ``rate`` per second.

    A client (an IP address) that used up its failures is refused before its credentials are
    checked, so a token-guessing client costs neither the identity provider nor the verifier.
    Clients are forgotten oldest first beyond ``max_clients``; one whose bucket is full again
    needs no entry.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        TokenBucket(rate, burst)  # validates the two numbers
        self.rate = rate
        self.burst = burst
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def retry_after(self) -> int:
        """Seconds until a refused client has one failure to spend again."""
        return max(1, math.ceil(1 / self.rate))

    def allows(self, client: str) -> bool:
        """Whether ``client`` may try credentials now."""
        bucket = self._buckets.get(client)
        if bucket is None:
            return True
        if bucket.available() >= bucket.burst:
            del self._buckets[client]
            return True
        return bucket.available() >= 1

    def failed(self, client: str) -> None:
        """Count one failed authentication of ``client``."""
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, clock=self._clock)
            self._buckets[client] = bucket
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
        bucket.take()
