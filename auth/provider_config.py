"""Reading a provider's ``configuration`` mapping: typed getters with clear errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from sluice.errors import SluiceError

__all__ = ["InvalidProviderConfiguration", "ProviderConfig"]


class InvalidProviderConfiguration(SluiceError, ValueError):
    """A provider's configuration is missing a key or has a value of the wrong type."""


class ProviderConfig:
    """The ``configuration`` of one provider; ``where`` names it in errors (``provider http``).

    Keys may be spelled kebab-case or camelCase (``base-url`` / ``baseUrl``), as LangStream
    accepted both.
    """

    def __init__(self, values: Mapping[str, Any], where: str) -> None:
        self._values = dict(values)
        self.where = where

    def _get(self, *names: str) -> tuple[str, Any]:
        for name in names:
            if name in self._values and self._values[name] is not None:
                return name, self._values[name]
        return names[0], None

    def error(self, name: str, reason: str) -> InvalidProviderConfiguration:
        return InvalidProviderConfiguration(f"{self.where}: configuration.{name} {reason}")

    def string(self, *names: str, required: bool = False, default: str | None = None) -> str | None:
        name, value = self._get(*names)
        if value is None:
            if required:
                raise self.error(name, "is required")
            return default
        if not isinstance(value, str):
            raise self.error(name, f"must be a string, not {type(value).__name__}")
        if required and not value.strip():
            raise self.error(name, "cannot be blank")
        return value

    def url(self, *names: str, required: bool = False, default: str | None = None) -> str | None:
        """An absolute http(s) URL."""
        value = self.string(*names, required=required, default=default)
        if value is None:
            return None
        try:
            parsed = httpx.URL(value)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise self.error(names[0], f"must be an http(s) URL, not {value!r}")
        return value

    def strings(self, *names: str, default: Sequence[str] = ()) -> tuple[str, ...]:
        name, value = self._get(*names)
        if value is None:
            return tuple(default)
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, "must be a string or a list of strings")
        if any(not v.strip() for v in value):
            raise self.error(name, "cannot contain a blank value")
        return tuple(value)

    def integers(self, *names: str, default: Sequence[int] = ()) -> tuple[int, ...]:
        name, value = self._get(*names)
        if value is None:
            return tuple(default)
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise self.error(name, "must be an integer or a list of integers")
        return tuple(items)

    def number(self, *names: str, default: float) -> float:
        name, value = self._get(*names)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.error(name, "must be a number of seconds, at least 0")
        return float(value)

    def mapping(self, *names: str) -> dict[str, str]:
        name, value = self._get(*names)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.error(name, "must be a mapping of strings to strings")
        return dict(value)
