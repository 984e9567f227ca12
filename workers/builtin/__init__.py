"""Agents built into the runtime, LangStream's built-in agent types: no user code.

Each one implements a runtime protocol of ``workers.agents`` directly, so it needs no adapter.
One module per family of agents (``identity``, ``transforms``, ``compute``, ``flow``, ``text``,
``http``, ``langserve``, ``completions``, ``query``, ``vector_sink``); this package only holds the
registry the loader reads. The HTTP, AI and datasource agents are imported when one is loaded:
their client libraries (httpx, openai; psycopg of the ``db`` extra) are in an application's
environment only when the application uses them (``sluice.environments``).
"""

from __future__ import annotations

from collections.abc import Callable

from workers.agents import LoadedAgent
from workers.builtin.compute import Compute
from workers.builtin.flare import FlareController
from workers.builtin.flow import Dispatch, LogEvent, TimerSource, TriggerEvent
from workers.builtin.identity import Identity
from workers.builtin.rerank import ReRank
from workers.builtin.text import (
    DocumentToJson,
    LanguageDetector,
    TextExtractor,
    TextNormaliser,
    TextSplitter,
)
from workers.builtin.transforms import (
    Cast,
    Drop,
    DropFields,
    Flatten,
    MergeKeyValue,
    UnwrapKeyValue,
)

__all__ = [
    "BUILTIN_AGENTS",
    "Cast",
    "Compute",
    "Dispatch",
    "DocumentToJson",
    "Drop",
    "DropFields",
    "FlareController",
    "Flatten",
    "Identity",
    "LanguageDetector",
    "LogEvent",
    "MergeKeyValue",
    "ReRank",
    "TextExtractor",
    "TextNormaliser",
    "TextSplitter",
    "TimerSource",
    "TriggerEvent",
    "UnwrapKeyValue",
]


def _http_request() -> LoadedAgent:
    from workers.builtin.http import HttpRequest

    return HttpRequest()


def _langserve_invoke() -> LoadedAgent:
    from workers.builtin.langserve import LangServeInvoke

    return LangServeInvoke()


def _ai_chat_completions() -> LoadedAgent:
    from workers.builtin.completions import ChatCompletions

    return ChatCompletions()


def _ai_text_completions() -> LoadedAgent:
    from workers.builtin.completions import TextCompletions

    return TextCompletions()


def _query() -> LoadedAgent:
    from workers.builtin.query import Query

    return Query()


def _query_vector_db() -> LoadedAgent:
    from workers.builtin.query import QueryVectorDB

    return QueryVectorDB()


def _vector_db_sink() -> LoadedAgent:
    from workers.builtin.vector_sink import VectorDBSink

    return VectorDBSink()


def _webcrawler_source() -> LoadedAgent:
    from workers.builtin.webcrawler import WebCrawlerSource

    return WebCrawlerSource()


def _s3_source() -> LoadedAgent:
    from workers.builtin.s3 import S3Source

    return S3Source()


def _azure_blob_storage_source() -> LoadedAgent:
    from workers.builtin.azure_blob import AzureBlobStorageSource

    return AzureBlobStorageSource()


def _compute_ai_embeddings() -> LoadedAgent:
    from workers.builtin.embeddings import ComputeAIEmbeddings

    return ComputeAIEmbeddings()


BUILTIN_AGENTS: dict[str, Callable[[], LoadedAgent]] = {
    "identity": Identity,
    "text-extractor": TextExtractor,
    "text-normaliser": TextNormaliser,
    "language-detector": LanguageDetector,
    "text-splitter": TextSplitter,
    "document-to-json": DocumentToJson,
    "drop-fields": DropFields,
    "merge-key-value": MergeKeyValue,
    "unwrap-key-value": UnwrapKeyValue,
    "cast": Cast,
    "flatten": Flatten,
    "compute": Compute,
    "drop": Drop,
    "dispatch": Dispatch,
    "trigger-event": TriggerEvent,
    "log-event": LogEvent,
    "timer-source": TimerSource,
    "re-rank": ReRank,
    "flare-controller": FlareController,
    "http-request": _http_request,
    "langserve-invoke": _langserve_invoke,
    "compute-ai-embeddings": _compute_ai_embeddings,
    "ai-chat-completions": _ai_chat_completions,
    "ai-text-completions": _ai_text_completions,
    "webcrawler-source": _webcrawler_source,
    "s3-source": _s3_source,
    "azure-blob-storage-source": _azure_blob_storage_source,
    "query": _query,
    "query-vector-db": _query_vector_db,
    "vector-db-sink": _vector_db_sink,
}
"""Agent type -> a factory of the loaded agent."""
