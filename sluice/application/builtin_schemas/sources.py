"""Configuration of the document sources: webcrawler-source, s3-source,
azure-blob-storage-source.

The keys and defaults are LangStream's runtime's (its planner injects none). Lists of URLs,
domains and paths may also be given as one comma-separated string, as LangStream reads them.
The S3 keys (``bucketName``, ``endpoint``, ``access-key``, ``secret-key``, ``region``) are
shared: ``s3-source`` reads its objects with them, ``webcrawler-source`` keeps its crawl status
there unless ``state-storage`` is ``disk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import COMPOSABLE, Check, Key, Problem

DEFAULT_USER_AGENT = "Mozilla/5.0 (compatible; Sluice webcrawler-source; LangStream-compatible)"
"""What the crawler says it is when ``user-agent`` is absent or empty."""

S3_KEYS: tuple[Key, ...] = (
    Key("bucketName", "string", default="langstream-source"),
    Key("endpoint", "string", default="http://minio-endpoint.-not-set:9090"),
    Key("access-key", "string", default="minioadmin"),
    Key("secret-key", "string", default="minioadmin"),
    Key("region", "string", default=""),
)
"""Where an S3-compatible object store is, and the credentials to use it."""

OBJECT_SOURCE_KEYS: tuple[Key, ...] = (
    Key("idle-time", "integer", default=5, minimum=0),
    Key("file-extensions", "string", default="pdf,docx,html,htm,md,txt"),
    Key("delete-objects", "boolean", default=True),
    COMPOSABLE,
)
"""What s3-source and azure-blob-storage-source share."""

LISTS = ("seed-urls", "allowed-domains", "forbidden-paths")
"""The webcrawler keys that hold a list of strings, or one comma-separated string."""

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "webcrawler-source": (
        Key("seed-urls", "any", default=()),
        Key("allowed-domains", "any", default=()),
        Key("forbidden-paths", "any", default=()),
        Key("max-urls", "integer", default=1000),
        Key("max-depth", "integer", default=50),
        Key("handle-robots-file", "boolean", default=True),
        Key("scan-html-documents", "boolean", default=True),
        Key("allow-non-html-contents", "boolean", default=False),
        Key("user-agent", "string", default=""),
        Key("min-time-between-requests", "integer", default=500, minimum=0),
        Key("max-error-count", "integer", default=5, minimum=1),
        Key("http-timeout", "integer", default=10000, minimum=1),
        Key("handle-cookies", "boolean", default=True),
        Key("reindex-interval-seconds", "integer", default=86400),
        Key("max-unflushed-pages", "integer", default=100, minimum=1),
        Key("state-storage", "string", default="s3", choices=("s3", "disk")),
        *S3_KEYS,
        COMPOSABLE,
    ),
    "s3-source": (*S3_KEYS, *OBJECT_SOURCE_KEYS),
    "azure-blob-storage-source": (
        Key("container", "string", default="langstream-azure-source"),
        Key("endpoint", "string", required=True),
        Key("sas-token", "string", default=""),
        Key("storage-account-name", "string", default=""),
        Key("storage-account-key", "string", default=""),
        Key("storage-account-connection-string", "string", default=""),
        *OBJECT_SOURCE_KEYS,
    ),
}


def text_list(value: Any) -> tuple[str, ...]:
    """A list key's entries, trimmed, empty ones dropped: a list, or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else (value or ())
    return tuple(text for text in (str(item).strip() for item in items) if text)


def _webcrawler(config: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for name in LISTS:
        value = config.get(name)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list):
            out.append(((name,), f"must be a list of strings, got {value!r}", True))
            continue
        bad = [item for item in value if not isinstance(item, str)]
        if bad:
            out.append(((name,), f"must hold strings, got {bad[0]!r}", True))
    seeds = text_list(config.get("seed-urls"))
    bad_seeds = [url for url in seeds if not url.lower().startswith(("http://", "https://"))]
    if bad_seeds:
        out.append((("seed-urls",), f"must be http or https URLs, got {bad_seeds[0]!r}", True))
    if not out and seeds and not text_list(config.get("allowed-domains")):
        out.append(
            (
                ("allowed-domains",),
                "is empty: no URL is allowed, so nothing will be crawled",
                False,
            )
        )
    return out


def _azure(config: Mapping[str, Any]) -> list[Problem]:
    """LangStream's credentials: a SAS token, an account name and key, or a connection
    string."""
    if config.get("sas-token") or config.get("storage-account-connection-string"):
        return []
    if config.get("storage-account-name"):
        if config.get("storage-account-key"):
            return []
        return [(("storage-account-key",), "is required with storage-account-name", True)]
    return [
        (
            ("sas-token",),
            "no credentials: give sas-token, storage-account-name and storage-account-key, "
            "or storage-account-connection-string",
            True,
        )
    ]


CHECKS: dict[str, Check] = {"webcrawler-source": _webcrawler, "azure-blob-storage-source": _azure}
