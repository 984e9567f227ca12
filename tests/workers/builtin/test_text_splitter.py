"""The text-splitter: LangStream's chunks for LangStream's cases, and its chunk headers.

Expected chunks marked ``TextChunkerAgentTest.<method>`` are the ones LangStream's
``ai.langstream.agents.text.TextChunkerAgentTest`` asserts; ``FlowControlRunnerIT`` is
``ai.langstream.kafka.FlowControlRunnerIT.testTriggerEventProcessor``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sluice.application.builtin_config import BadConfiguration
from sluice.record import Record
from workers.builtin.text import TextAgentError, TextSplitter
from workers.builtin.text_splitter import (
    RecursiveCharacterSplitter,
    java_trim,
    token_length,
    utf16_length,
)


async def split(text: Any, **config: Any) -> list[Record]:
    agent = TextSplitter()
    await agent.init(config)
    return await agent.process(Record(text, key="filename.txt", headers={"origin": "test"}))


async def chunks(text: Any, **config: Any) -> list[str]:
    return [r.value for r in await split(text, **config)]


DEFAULTS = {"separators": ["\n\n", "\n", " ", ""], "keep_separator": False}


@pytest.mark.parametrize(
    ("size", "overlap", "text", "length", "expected"),
    [
        pytest.param(20, 5, "Hello world", "length", ["Hello world"], id="testChunks-1"),
        pytest.param(
            15,
            5,
            "Hello world. This is a great day",
            "length",
            ["Hello world.", "This is a great", "great day"],
            id="testChunks-2",
        ),
        pytest.param(20, 5, "", "length", [], id="testChunks-empty"),
        pytest.param(20, 5, " ", "length", [], id="testChunks-blank"),
        pytest.param(20, 5, "Hello world", "cl100k_base", ["Hello world"], id="testChunks-tokens"),
        pytest.param(
            10,
            2,
            "Hello world, I would like to see some overlap here",
            "cl100k_base",
            ["Hello world, I would like", "like to see some overlap", "overlap here"],
            id="testChunks-token-overlap",
        ),
    ],
)
async def test_langstream_chunks(
    size: int, overlap: int, text: str, length: str, expected: list[str]
) -> None:
    # TextChunkerAgentTest.testChunks
    got = await chunks(
        text, chunk_size=size, chunk_overlap=overlap, length_function=length, **DEFAULTS
    )
    assert got == expected


async def test_keep_separator() -> None:
    # TextChunkerAgentTest.testChunksKeepSeparator
    got = await chunks(
        "Hello world. This is a great day",
        chunk_size=15,
        chunk_overlap=5,
        length_function="length",
        separators=["\n\n", "\n", " ", ""],
        keep_separator=True,
    )
    assert got == ["Hello world.", "This is a", "is a great day"]


async def test_regex_separator_kept() -> None:
    # TextChunkerAgentTest.testChunksRegexSeparator
    got = await chunks(
        "Hello1world.2This3is4a5great6day",
        chunk_size=15,
        chunk_overlap=5,
        length_function="length",
        separators=["\\d+"],
        keep_separator=True,
    )
    assert got == ["Hello1world.", "2This3is4a", "3is4a5great6day"]


async def test_regex_separator_not_kept_glues_with_the_matched_text() -> None:
    # LangStream joins the pieces with the pattern itself ("Hello\\d+world."); the chunks here
    # are pieces of the document, as the docs promise.
    got = await chunks(
        "Hello1world.2This3is4a5great6day",
        chunk_size=15,
        chunk_overlap=5,
        length_function="length",
        separators=["\\d+"],
    )
    assert got == ["Hello1world.", "This3is4a5great", "great6day"]
    assert all("\\d" not in chunk for chunk in got)


async def test_capturing_group_in_a_separator_is_not_a_piece() -> None:
    # Java's String.split drops groups; Python's re.split would return them as pieces.
    got = await chunks(
        "a-b-c-d", chunk_size=2, chunk_overlap=0, length_function="length", separators=["(-)"]
    )
    assert got == ["a", "b", "c", "d"]


async def test_headers_of_each_chunk() -> None:
    # FlowControlRunnerIT.testTriggerEventProcessor: chunk_size 5, overlap 0, cl100k_base
    records = await split(
        "some very long text. end", chunk_size=5, chunk_overlap=0, length_function="cl100k_base"
    )
    assert [r.value for r in records] == ["some very long", "text. end"]
    assert [dict(r.headers) for r in records] == [
        {
            "origin": "test",
            "chunk_id": "0",
            "chunk_text_length": "14",
            "chunk_num_tokens": "3",
            "text_num_chunks": "2",
        },
        {
            "origin": "test",
            "chunk_id": "1",
            "chunk_text_length": "9",
            "chunk_num_tokens": "3",
            "text_num_chunks": "2",
        },
    ]
    assert {r.key for r in records} == {"filename.txt"}


async def test_text_length_counts_utf16_units_like_java() -> None:
    records = await split("😀 ab", chunk_size=20, chunk_overlap=0, length_function="length")
    assert records[0].headers["chunk_text_length"] == "5"
    assert records[0].headers["chunk_num_tokens"] == "5"


async def test_bytes_and_json_values_are_read_as_text() -> None:
    assert await chunks(b"Hello world", chunk_size=20, chunk_overlap=0) == ["Hello world"]
    assert await chunks({"a": "b c"}, chunk_size=50, chunk_overlap=0) == ['{"a":"b c"}']


def test_reference_cases_of_the_algorithm() -> None:
    # Cases run against LangStream's RecursiveCharacterTextSplitter (length = chars).
    assert RecursiveCharacterSplitter(5, 2, len).split("a b c d e f g h i j") == [
        "a b c",
        "c d e",
        "e f g",
        "g h i",
        "i j",
    ]
    assert RecursiveCharacterSplitter(4, 1, len).split("abcdefghij") == ["abcd", "defg", "ghij"]


def test_chunks_are_trimmed_like_java() -> None:
    assert java_trim("\t x\u00a0 \n") == "x\u00a0"
    assert utf16_length("é😀") == 3


def test_token_counts_are_offline_cl100k() -> None:
    count = token_length("cl100k_base")
    assert count("Hello world") == 2
    # Special tokens are ordinary text, not an error.
    assert count("<|endoftext|>") > 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param(
            {"chunk_size": 5, "chunk_overlap": 6},
            "chunk_overlap: (6) is larger than chunk_size (5); it must be smaller",
            id="overlap",
        ),
        pytest.param(
            {"splitter_type": "Other"},
            "splitter_type: must be one of RecursiveCharacterTextSplitter",
            id="type",
        ),
        pytest.param({"length_function": "gpt9"}, "Unknown encoding: gpt9", id="encoding"),
        pytest.param(
            {"chunk_size": "many"}, "chunk_size: must be a whole number, got 'many'", id="size"
        ),
        pytest.param({"keep_separator": "yes"}, "keep_separator: must be true or false", id="bool"),
        pytest.param(
            {"separators": ["("]}, "separator '(' is not a regular expression", id="regex"
        ),
        pytest.param({"separators": "\n"}, "separators: must be a list of strings", id="list"),
    ],
)
async def test_bad_configuration_is_refused_at_init(config: dict[str, Any], message: str) -> None:
    # Configuration checked by its table (BadConfiguration, as sluice validate words it), or a
    # separator or encoding the splitter refuses (TextAgentError): both name the agent type.
    with pytest.raises((TextAgentError, BadConfiguration), match=r"^text-splitter: ") as caught:
        await TextSplitter().init(config)
    assert message in str(caught.value)


async def test_string_numbers_and_booleans_are_accepted_as_langstream_parsed_them() -> None:
    got = await chunks(
        "a b c d e f g h i j",
        chunk_size="5",
        chunk_overlap="2",
        keep_separator="false",
        length_function="length",
    )
    assert got == ["a b c", "c d e", "e f g", "g h i", "i j"]
