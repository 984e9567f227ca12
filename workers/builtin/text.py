"""LangStream's text agents: text-extractor, text-normaliser, language-detector, text-splitter and
document-to-json.

Each reads the record's value as text: ``str`` as it is, ``bytes`` as UTF-8, ``None`` as empty
text and any other value (a dict or list handed on by a fused agent, a number) as compact JSON,
where LangStream printed Java's ``{k=v}``. Key and headers go on unchanged unless the agent says
otherwise. Configuration is checked in ``init``, so a bad key stops the worker at start with the
agent type and key in the message; the libraries of the ``text`` extra are imported there too.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from sluice.application.builtin_config import read_configuration
from sluice.record import Record
from workers.builtin.text_extract import MissingLibrary, extract_text, require
from workers.builtin.text_splitter import (
    DEFAULT_SEPARATORS,
    EncodingUnavailable,
    Length,
    RecursiveCharacterSplitter,
    UnknownEncoding,
    java_trim,
    token_length,
    utf16_length,
)
from workers.errors import WorkerError

__all__ = [
    "DocumentToJson",
    "LanguageDetector",
    "TextAgentError",
    "TextExtractor",
    "TextNormaliser",
    "TextSplitter",
    "as_text",
]


class TextAgentError(WorkerError, ValueError):
    """A text agent cannot start: bad configuration, or a library of the ``text`` extra is
    missing. The message names the agent type and the configuration key."""


def as_text(value: Any) -> str:
    """The value as the text agents read it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _TextAgent:
    """The lifecycle every text agent shares: nothing to start or close."""

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class TextExtractor(_TextAgent):
    """``text-extractor``: the value (a PDF, Word, OpenDocument, HTML, XML or text document) becomes
    its plain text, trimmed."""

    async def init(self, config: dict[str, Any]) -> None:
        read_configuration("text-extractor", config)
        for module, package in (
            ("pypdf", "pypdf"),
            ("docx", "python-docx"),
            ("bs4", "beautifulsoup4"),
        ):
            _require(module, package, "text-extractor")

    async def process(self, record: Record) -> list[Record]:
        value = record.value
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
        else:
            # A document whose bytes were valid UTF-8 arrives as text; these are its bytes again.
            data = as_text(value).encode("utf-8")
        text = await asyncio.to_thread(extract_text, data)
        return [record.with_value(text)]


class TextNormaliser(_TextAgent):
    """``text-normaliser``: ``trim-spaces`` collapses runs of spaces, tabs and blank lines and
    trims; ``make-lowercase`` lower-cases (both default true)."""

    lowercase = True
    trim_spaces = True

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("text-normaliser", config)
        self.lowercase = checked["make-lowercase"]
        self.trim_spaces = checked["trim-spaces"]

    async def process(self, record: Record) -> list[Record]:
        text = as_text(record.value)
        if self.trim_spaces:
            text = normalise_spaces(text)
        if self.lowercase:
            text = text.lower()
        return [record.with_value(text)]


def normalise_spaces(text: str) -> str:
    """LangStream's replacements, in its order (each one a single left-to-right pass)."""
    for pattern, replacement in (
        (r"\t+", " "),
        (r" +", " "),
        ("\n\n\n", "\n\n"),
        ("( \n\n)+", " \n\n"),
        ("( \n)+", "\n"),
        ("\n ", "\n"),
    ):
        text = re.sub(pattern, replacement, text)
    return java_trim(text)


class LanguageDetector(_TextAgent):
    """``language-detector``: sets the header ``property`` (default ``language``) to the text's
    ISO 639-1 code; with ``allowedLanguages`` it drops records in other languages."""

    property = "language"
    allowed: frozenset[str] = frozenset()

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("language-detector", config)
        self.property = checked["property"]
        self.allowed = frozenset(checked["allowedLanguages"])
        langdetect = _require("langdetect.detector_factory", "langdetect", "language-detector")
        # langdetect samples at random; a fixed seed gives the same answer for the same text.
        langdetect.DetectorFactory.seed = 0
        langdetect.init_factory()  # loads the language profiles now, not on the first record
        self._factory: Any = langdetect._factory
        self._no_features: type[Exception] = _require(
            "langdetect.lang_detect_exception", "langdetect", "language-detector"
        ).LangDetectException

    def detect(self, text: str) -> str:
        """The ISO 639-1 code, or ``unknown`` for text without letters."""
        detector = self._factory.create()
        detector.append(text)
        try:
            code: str = detector.detect()
        except self._no_features:
            return "unknown"
        # langdetect says zh-cn / zh-tw; the header carries the ISO 639-1 code.
        return code.partition("-")[0]

    async def process(self, record: Record) -> list[Record]:
        language = self.detect(as_text(record.value))
        if self.allowed and language not in self.allowed:
            return []
        return [record.with_headers({self.property: language})]


class DocumentToJson(_TextAgent):
    """``document-to-json``: the value becomes a JSON object ``{<text-field>: text}`` plus, with
    ``copy-properties`` (default true), one entry per header."""

    text_field = "text"
    copy_properties = True

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("document-to-json", config)
        self.text_field = checked["text-field"]
        self.copy_properties = checked["copy-properties"]

    async def process(self, record: Record) -> list[Record]:
        document: dict[str, Any] = {self.text_field: as_text(record.value)}
        if self.copy_properties:
            document.update(record.headers)
        return [record.with_value(json.dumps(document, ensure_ascii=False, separators=(",", ":")))]


class TextSplitter(_TextAgent):
    """``text-splitter``: one record per chunk, with the input's key and headers plus
    ``chunk_id`` (from 0), ``chunk_text_length`` (UTF-16 code units, as Java counts),
    ``chunk_num_tokens`` (by ``length_function``) and ``text_num_chunks``."""

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("text-splitter", config)
        separators = checked["separators"]
        self.length = self._length(checked["length_function"])
        try:
            self.splitter = RecursiveCharacterSplitter(
                chunk_size=checked["chunk_size"],
                chunk_overlap=checked["chunk_overlap"],
                length=self.length,
                separators=DEFAULT_SEPARATORS if separators is None else separators,
                keep_separator=checked["keep_separator"],
            )
        except ValueError as error:
            raise TextAgentError(f"text-splitter: {error}") from None

    @staticmethod
    def _length(name: str) -> Length:
        if name == "length":
            return utf16_length
        try:
            return token_length(name)
        except UnknownEncoding as error:
            raise TextAgentError(f"text-splitter: {error} (length_function)") from None
        except EncodingUnavailable as error:
            raise TextAgentError(
                f"text-splitter: length_function {name}: {error}; "
                "install the text extra: pip install 'sluicegate[text]'"
            ) from None

    async def process(self, record: Record) -> list[Record]:
        text = as_text(record.value)
        chunks = await asyncio.to_thread(self._chunks, text)
        total = str(len(chunks))
        return [
            record.with_value(chunk).with_headers(
                chunk_id=str(index),
                chunk_text_length=str(utf16_length(chunk)),
                chunk_num_tokens=str(tokens),
                text_num_chunks=total,
            )
            for index, (chunk, tokens) in enumerate(chunks)
        ]

    def _chunks(self, text: str) -> list[tuple[str, int]]:
        return [(chunk, self.length(chunk)) for chunk in self.splitter.split(text)]


def _require(module: str, package: str, agent_type: str) -> Any:
    try:
        return require(module, package, agent_type)
    except MissingLibrary as error:
        raise TextAgentError(str(error)) from None
