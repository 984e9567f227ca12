"""Configuration of the flow agents (filled in as they are built)."""

from __future__ import annotations

from sluice.application.builtin_keys import Check, Key

SCHEMAS: dict[str, tuple[Key, ...]] = {}

CHECKS: dict[str, Check] = {}
