"""Plain text out of a document's bytes: PDF, Word, OpenDocument, HTML, XML or plain text.

LangStream used Apache Tika, a JVM library. Sluice recognises the formats LangStream's sources
deliver (the raw bytes of files from S3 or Azure, HTML pages from the web crawler, text) by their
first bytes and reads each with a small pure-Python library: pypdf for PDF, python-docx for
``.docx``, Beautiful Soup (with Python's own HTML parser) for HTML, the standard library for XML
and OpenDocument. The libraries are imported on first use, so a worker without
the ``text`` extra runs every other agent.
"""

from __future__ import annotations

import importlib
import io
import re
import zipfile
from types import ModuleType
from typing import Any
from xml.etree import ElementTree

TEXT_EXTRA_HINT = "install the text extra: pip install 'sluicegate[text]'"

_BLOCK_TAGS = [
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
    "title",
]
_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"  # an XML declaration, comments
    rb"<(?:!doctype\s+html|html|head|body|title|h[1-6]|table|p|div|script|style|br|a|b)\b",
    re.IGNORECASE | re.DOTALL,
)
_XML_START = re.compile(rb"^\s*<\?xml\b")
_ODF_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"


class ExtractionError(ValueError):
    """The bytes are no document text-extractor can read; says what they looked like."""


class MissingLibrary(ImportError):
    """A library of the ``text`` extra is not installed."""


def require(module: str, package: str, needed_by: str) -> ModuleType:
    """Import ``module``, or say which package of the ``text`` extra ``needed_by`` is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise MissingLibrary(
            f"{needed_by} needs the Python package {package}: {TEXT_EXTRA_HINT}"
        ) from None


def extract_text(data: bytes) -> str:
    """The document's text, without leading and trailing whitespace."""
    head = data[:1024]
    if b"%PDF-" in head:
        return _pdf(data).strip()
    if head.startswith(b"PK\x03\x04"):
        return _zip_document(data).strip()
    text = _decode(data)
    if _HTML_START.match(head):
        return _html(text).strip()
    if _XML_START.match(head):
        return _xml(text).strip()
    return text.strip()


def _pdf(data: bytes) -> str:
    pypdf = require("pypdf", "pypdf", "text-extractor (PDF)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as error:
        raise ExtractionError(f"cannot read the PDF: {type(error).__name__}: {error}") from None
    return "\n\n".join(page.strip() for page in pages if page.strip())


def _zip_document(data: bytes) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        if "word/document.xml" in names:
            return _docx(data)
        if "content.xml" in names and archive.read("mimetype").startswith(
            b"application/vnd.oasis.opendocument"
        ):
            return _odf(archive.read("content.xml"))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as error:
        raise ExtractionError(f"cannot read the ZIP document: {error}") from None
    raise ExtractionError(
        "unsupported document: a ZIP archive that is neither a Word (.docx) nor an "
        "OpenDocument file"
    )


def _docx(data: bytes) -> str:
    docx = require("docx", "python-docx", "text-extractor (Word)")
    try:
        document: Any = docx.Document(io.BytesIO(data))
    except Exception as error:
        raise ExtractionError(f"cannot read the Word document: {error}") from None
    blocks = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(block for block in blocks if block.strip())


def _odf(content: bytes) -> str:
    root = ElementTree.fromstring(content)
    blocks = [
        "".join(element.itertext())
        for element in root.iter()
        if element.tag in (f"{_ODF_TEXT}p", f"{_ODF_TEXT}h")
    ]
    return "\n".join(block for block in blocks if block.strip())


def _html(text: str) -> str:
    bs4 = require("bs4", "beautifulsoup4", "text-extractor (HTML)")
    soup = bs4.BeautifulSoup(text, "html.parser")
    for hidden in soup(["script", "style", "noscript", "template"]):
        hidden.decompose()
    # Block elements end lines, so paragraphs do not run into each other; inline ones do not.
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_after("\n")
        tag.insert_before("\n")
    lines = (line.strip() for line in soup.get_text().splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _xml(text: str) -> str:
    """Each element's own text on a line (expat refuses entity-expansion bombs)."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise ExtractionError(f"cannot read the XML document: {error}") from None
    return "\n".join(part.strip() for part in root.itertext() if part.strip())


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:4096]:
        raise ExtractionError(
            "unsupported document: binary data that is not PDF, Word, OpenDocument or text "
            f"(starts with {data[:8]!r})"
        )
    # Text in a legacy 8-bit encoding; Windows-1252 is the common one and decodes any byte.
    return data.decode("cp1252", errors="replace")
