"""The agent types an application may use, with their component type and whether they fuse.

The list is LangStream's, so its applications validate and plan unchanged; ``runnable`` says
which ones Sluice's workers can run today (the others are refused by ``sluice run`` with a clear
message instead of failing half-way).
"""

from __future__ import annotations

from dataclasses import dataclass

from sluice.application.model import ComponentType


@dataclass(frozen=True)
class AgentType:
    name: str
    component: ComponentType
    composable: bool = True
    runnable: bool = False
    needs_class_name: bool = False


def _types() -> dict[str, AgentType]:
    table: list[AgentType] = [
        AgentType("python-processor", "processor", runnable=True, needs_class_name=True),
        AgentType("python-function", "processor", runnable=True, needs_class_name=True),
        AgentType("python-source", "source", runnable=True, needs_class_name=True),
        AgentType("python-sink", "sink", runnable=True, needs_class_name=True),
        AgentType(
            "python-service", "service", composable=False, runnable=True, needs_class_name=True
        ),
        AgentType("identity", "processor", runnable=True),
        AgentType("camel-source", "source", runnable=True),
        AgentType("source", "source", composable=False),
        AgentType("sink", "sink", composable=False),
    ]
    for name in ("webcrawler-source", "s3-source", "azure-blob-storage-source"):
        table.append(AgentType(name, "source", runnable=True))
    table.append(AgentType("timer-source", "source", runnable=True))
    table.append(AgentType("vector-db-sink", "sink", runnable=True))
    for name in ("query-vector-db", "query"):
        table.append(AgentType(name, "processor", runnable=True))
    table.append(AgentType("flare-controller", "processor", runnable=True))
    for name in ("dispatch", "trigger-event", "log-event"):
        table.append(AgentType(name, "processor", runnable=True))
    for name in ("ai-chat-completions", "ai-text-completions"):
        table.append(AgentType(name, "processor", runnable=True))
    table.append(AgentType("compute-ai-embeddings", "processor", runnable=True))
    table.append(AgentType("re-rank", "processor", runnable=True))
    for name in ("http-request", "langserve-invoke"):
        table.append(AgentType(name, "processor", runnable=True))
    for name in (
        "compute",
        "drop",
        "drop-fields",
        "merge-key-value",
        "unwrap-key-value",
        "cast",
        "flatten",
    ):
        table.append(AgentType(name, "processor", runnable=True))
    for name in (
        "text-extractor",
        "text-splitter",
        "text-normaliser",
        "language-detector",
        "document-to-json",
    ):
        table.append(AgentType(name, "processor", runnable=True))
    return {t.name: t for t in table}


AGENT_TYPES: dict[str, AgentType] = _types()
