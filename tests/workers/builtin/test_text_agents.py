"""text-extractor, text-normaliser, language-detector and document-to-json on real documents.

Expected values cite LangStream's tests in ``ai.langstream.agents.text`` (class.method). The
documents are made here: a PDF written with pypdf, a .docx with python-docx, HTML by hand.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import docx
import pytest
from pypdf import PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.builtin_config import BadConfiguration
from sluice.application.plan import PlannedAgent
from sluice.record import Record
from sluice.sdk import AgentContext
from workers.builtin.text import (
    DocumentToJson,
    LanguageDetector,
    TextExtractor,
    TextNormaliser,
    as_text,
)
from workers.builtin.text_extract import ExtractionError, MissingLibrary, extract_text, require
from workers.loading import load_agent


def pdf(*pages: str) -> bytes:
    """A PDF with one line of Helvetica text per page."""
    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(612, 792)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        content = ContentStream(None, writer)
        content.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1"))
        page.replace_contents(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def word(*paragraphs: str, table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, cells in zip(grid.rows, table, strict=True):
            for cell, text in zip(row.cells, cells, strict=True):
                cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


async def run(agent: Any, config: dict[str, Any], record: Record) -> list[Record]:
    await agent.init(config)
    await agent.start()
    try:
        result: list[Record] = await agent.process(record)
    finally:
        await agent.close()
    return result


async def extracted(value: Any) -> str:
    [record] = await run(TextExtractor(), {}, Record(value, key="filename"))
    assert record.key == "filename"
    return str(record.value)


# text-extractor


async def test_extract_plain_text() -> None:
    # TextExtractorTest.textExtractFromText
    assert await extracted(b"This is a test") == "This is a test"


async def test_extract_pdf() -> None:
    # TextExtractorTest.textExtractFromPdf (its simple.pdf holds this sentence)
    assert await extracted(pdf("This is a very simple PDF")) == "This is a very simple PDF"


async def test_extract_pdf_pages_are_paragraphs() -> None:
    assert await extracted(pdf("First page", "Second page")) == "First page\n\nSecond page"


async def test_extract_word() -> None:
    # TextExtractorTest.textExtractFromWord (its simple.docx holds this sentence)
    document = word("This is a very simple Word Document")
    assert await extracted(document) == "This is a very simple Word Document"


async def test_extract_word_paragraphs_and_tables() -> None:
    document = word("One", "Two", table=[["a", "b"], ["c", "d"]])
    assert await extracted(document) == "One\nTwo\na\tb\nc\td"


async def test_extract_html_drops_markup_scripts_and_styles() -> None:
    page = (
        "<!DOCTYPE html><html><head><title>Title</title><style>p {color: red}</style></head>"
        "<body><h1>Heading</h1><p>Some <b>bold</b> text</p><script>run()</script>"
        "<ul><li>one</li><li>two</li></ul></body></html>"
    )
    text = await extracted(page)  # the web crawler's pages arrive as text
    assert text == "Title\n\nHeading\n\nSome bold text\n\none\n\ntwo"


async def test_extract_xml_and_open_document() -> None:
    assert await extracted(b'<?xml version="1.0"?><doc><a>one</a><b>two</b></doc>') == "one\ntwo"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as odt:
        odt.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        odt.writestr(
            "content.xml",
            '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:'
            'office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
            "<office:body><office:text><text:h>Title</text:h><text:p>Body "
            "<text:span>text</text:span></text:p></office:text></office:body>"
            "</office:document-content>",
        )
    assert await extracted(archive.getvalue()) == "Title\nBody text"


def test_extract_legacy_encodings() -> None:
    assert extract_text("café".encode("cp1252")) == "café"
    assert extract_text("\ufeffhé".encode("utf-16-le")) == "hé"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"\x00\x01\x02\xff\xfe binary", "binary data", id="binary"),
        pytest.param(b"%PDF-1.4 truncated", "cannot read the PDF", id="broken-pdf"),
        pytest.param(b"PK\x03\x04 not really", "cannot read the ZIP", id="broken-zip"),
    ],
)
def test_unreadable_documents_say_what_they_are(data: bytes, message: str) -> None:
    with pytest.raises(ExtractionError, match=message):
        extract_text(data)


def test_a_missing_library_names_the_extra() -> None:
    with pytest.raises(MissingLibrary, match=r"sluicegate\[text\]") as caught:
        require("no_such_module_sluice", "no-such-package", "text-extractor (PDF)")
    assert "text-extractor (PDF) needs the Python package no-such-package" in str(caught.value)


# text-normaliser


async def test_normaliser_trims_spaces_and_lowercases() -> None:
    # TextNormaliserAgentTest.testTrimSpaces (plus the default lower-casing)
    text = (
        "  some  \n\n text with \t \tspaces \n\n\n this is a new line. \n \n \n     \n then "
        "two new lines. \n\n  \n\n  \n\n  \n\n end"
    )
    [record] = await run(TextNormaliser(), {}, Record(text))
    expected = "some\n\ntext with spaces\n\nthis is a new line.\nthen two new lines.\n\nend"
    assert record.value == expected
    [shouted] = await run(TextNormaliser(), {}, Record("  Hello   WORLD "))
    assert shouted.value == "hello world"


async def test_normaliser_options_off() -> None:
    config = {"make-lowercase": False, "trim-spaces": "false"}
    [record] = await run(TextNormaliser(), config, Record("  Hello \t WORLD "))
    assert record.value == "  Hello \t WORLD "
    with pytest.raises(BadConfiguration, match="text-normaliser: make-lowercase: must be true"):
        await TextNormaliser().init({"make-lowercase": "maybe"})


# language-detector


@pytest.mark.parametrize(
    ("text", "code"),
    [
        pytest.param("This is a English", "en", id="LanguageDetectorTest.textDetect-en"),
        pytest.param("Parlez-vous français?", "fr", id="LanguageDetectorTest.textDetect-fr"),
        # LangStream's "Questo é italiano" (wrong accent) is Portuguese to langdetect.
        pytest.param("Questo è italiano", "it", id="it"),
        pytest.param("这是中文文本用于测试语言检测", "zh", id="zh-cn-is-zh"),
        pytest.param("12345 !!", "unknown", id="no-letters"),
    ],
)
async def test_language_detector_sets_the_header(text: str, code: str) -> None:
    config = {"property": "detected-language"}
    [record] = await run(LanguageDetector(), config, Record(text, headers={"keep": "me"}))
    assert dict(record.headers) == {"keep": "me", "detected-language": code}
    assert record.value == text


async def test_language_detector_drops_languages_not_allowed() -> None:
    config = {"allowedLanguages": ["en", "fr"]}
    assert await run(LanguageDetector(), config, Record("Questo è italiano")) == []
    [kept] = await run(LanguageDetector(), config, Record("This is a English"))
    assert kept.headers["language"] == "en"
    with pytest.raises(BadConfiguration, match="allowedLanguages: must be a list of strings"):
        await LanguageDetector().init({"allowedLanguages": "en"})


async def test_language_detection_is_deterministic() -> None:
    agent = LanguageDetector()
    await agent.init({})
    answers = {agent.detect("Ciao, come stai? Oggi è una bella giornata") for _ in range(20)}
    assert answers == {"it"}


# document-to-json


async def test_document_to_json_copies_headers() -> None:
    # DocumentToJsonTest.textConvertToJson
    record = Record(
        "This is a English",
        key="filename.txt",
        headers={"detected-language": "en", "other-header": "bytearray-value"},
    )
    config: dict[str, Any] = {"text-field": "document", "copy-properties": "true"}
    [converted] = await run(DocumentToJson(), config, record)
    assert json.loads(converted.value) == {
        "detected-language": "en",
        "document": "This is a English",
        "other-header": "bytearray-value",
    }
    assert converted.key == "filename.txt"
    assert dict(converted.headers) == dict(record.headers)
    config["copy-properties"] = "false"
    [plain] = await run(DocumentToJson(), config, record)
    assert plain.value == '{"document":"This is a English"}'


async def test_document_to_json_defaults_and_values() -> None:
    [converted] = await run(DocumentToJson(), {}, Record(b"caf\xc3\xa9", headers={"a": "1"}))
    assert converted.value == '{"text":"café","a":"1"}'
    [empty] = await run(DocumentToJson(), {"copy-properties": False}, Record(None))
    assert empty.value == '{"text":""}'


def test_values_read_as_text() -> None:
    assert as_text(None) == ""
    assert as_text(b"\xff") == "\ufffd"
    assert as_text({"a": [1, True]}) == '{"a":[1,true]}'
    assert as_text(1.5) == "1.5"


# loading by type


@pytest.mark.parametrize(
    "agent_type",
    ["text-extractor", "text-normaliser", "language-detector", "text-splitter", "document-to-json"],
)
async def test_every_text_agent_is_runnable_and_loads_by_type(agent_type: str) -> None:
    assert AGENT_TYPES[agent_type].runnable
    planned = PlannedAgent(
        id="a", type=agent_type, component="processor", pipeline="p", configuration={}
    )
    agent = load_agent(
        planned, AgentContext(agent_id="a", tenant="t", application="x"), code_dirs=[]
    )
    [record] = await run(agent, {}, Record("Hello world"))
    assert record.value
