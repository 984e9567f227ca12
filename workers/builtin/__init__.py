"""Agents built into the runtime, LangStream's built-in agent types: no user code.

Each one implements a runtime protocol of ``workers.agents`` directly, so it needs no adapter.
One module per family of agents (``identity``; transforms, text, HTTP as they arrive); this
package only holds the registry the loader reads.
"""

from __future__ import annotations

from collections.abc import Callable

from workers.agents import LoadedAgent
from workers.builtin.identity import Identity

__all__ = ["BUILTIN_AGENTS", "Identity"]

BUILTIN_AGENTS: dict[str, Callable[[], LoadedAgent]] = {"identity": Identity}
"""Agent type -> a factory of the loaded agent."""
