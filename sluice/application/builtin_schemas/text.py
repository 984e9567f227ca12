"""Configuration of the text agents: text-extractor, text-normaliser, language-detector,
document-to-json and text-splitter (LangStream's keys and defaults)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import COMPOSABLE, Check, Key, Problem

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "text-extractor": (COMPOSABLE,),
    "text-normaliser": (
        COMPOSABLE,
        Key("make-lowercase", "boolean", default=True),
        Key("trim-spaces", "boolean", default=True),
    ),
    "language-detector": (
        COMPOSABLE,
        Key("property", "string", default="language"),
        Key("allowedLanguages", "texts", default=()),
    ),
    "document-to-json": (
        COMPOSABLE,
        Key("text-field", "string", default="text"),
        Key("copy-properties", "boolean", default=True),
    ),
    "text-splitter": (
        COMPOSABLE,
        Key(
            "splitter_type",
            "string",
            default="RecursiveCharacterTextSplitter",
            choices=("RecursiveCharacterTextSplitter",),
        ),
        # None: the splitter's own default list (paragraphs, lines, spaces, characters).
        Key("separators", "texts"),
        Key("keep_separator", "boolean", default=False),
        Key("chunk_size", "integer", default=200, minimum=1),
        Key("chunk_overlap", "integer", default=100, minimum=0),
        Key("length_function", "string", default="cl100k_base"),
    ),
}


def _overlap_below_size(config: Mapping[str, Any]) -> list[Problem]:
    size, overlap = int(config.get("chunk_size", 200)), int(config.get("chunk_overlap", 100))
    if overlap <= size:
        return []
    message = f"({overlap}) is larger than chunk_size ({size}); it must be smaller"
    return [(("chunk_overlap",), message, True)]


CHECKS: dict[str, Check] = {"text-splitter": _overlap_below_size}
