"""The WebSocket Origin allow-list (cross-site WebSocket hijacking protection)."""

from __future__ import annotations

from collections.abc import Collection

from gateway.errors import Forbidden

__all__ = ["check_origin"]


def check_origin(origin: str | None, allowed: Collection[str] | None) -> None:
    """:class:`~gateway.errors.Forbidden` when a browser's ``origin`` is not in ``allowed``.

    Matching is exact on ``scheme://host[:port]`` (a trailing slash, another port or scheme, a
    longer host and ``null`` do not match). ``allowed`` None allows every origin (LangStream's
    behaviour); a request without ``Origin`` does not come from a browser page and is allowed.

    >>> check_origin("https://app.example", ["https://app.example"])
    >>> check_origin("https://app.example.evil.com", ["https://app.example"])
    Traceback (most recent call last):
    ...
    gateway.errors.Forbidden: origin https://app.example.evil.com is not allowed to open WebSockets
    """
    if allowed is None or origin is None:
        return
    if origin not in allowed:
        raise Forbidden(f"origin {origin} is not allowed to open WebSockets")
