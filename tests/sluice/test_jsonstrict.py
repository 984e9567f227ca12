"""sluice.jsonstrict: orjson's speed with ``json``'s results and messages, NaN refused."""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import pytest

from sluice import jsonstrict


def stdlib(text: str) -> Any:
    """What ``json`` gives, NaN and the infinities refused: what ``loads`` must give."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


def outcome(read: Any, text: str) -> tuple[str, str]:
    try:
        value = read(text)
    except ValueError as error:
        return "error", str(error)
    return type(value).__name__, repr(value)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2.5], "b": {"c": null, "d": true}, "e": "x\\u00e9\\n"}',
        '{"a": 1, "a": 2}',
        "-0",
        "-0.0",
        "0e0",
        "1E+2",
        "1e-400",
        "1e400",
        "-1e400",
        "5e-324",
        "1.7976931348623157e308",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551616",
        "[1, 123456789012345678901234567890, 2.5]",
        '{"id": -99999999999999999999}',
        '"\\ud800"',
        '"\\ud83d\\ude00"',
        "[NaN]",
        "[Infinity]",
        '{"a": -Infinity}',
        "[1, 2",
        "[1, 2,]",
        "",
        '  {"a" : 1 }  ',
        '"a\tb"',
        "\ufeff[1]",
        "[1] x",
        "01",
        '{"a" 1}',
        "nul",
    ],
)
def test_the_same_as_json(text: str) -> None:
    assert outcome(jsonstrict.loads, text) == outcome(stdlib, text)


def test_a_refused_constant_is_named() -> None:
    with pytest.raises(ValueError, match="NaN is not valid JSON"):
        jsonstrict.loads('{"v": [1, NaN]}')


def test_numbers_read_as_json_reads_them() -> None:
    """Random doubles in several notations, and integers of every length up to 25 digits."""
    rng = random.Random(7)
    texts: list[str] = []
    for _ in range(3000):
        x = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        if x != x or abs(x) == float("inf"):
            continue
        texts += [repr(x), f"{x:.17g}", f"{x:.6g}", f"{x:.3e}"]
    for digits in range(1, 26):
        n = rng.randrange(10 ** (digits - 1), 10**digits)
        texts += [str(n), str(-n)]
    document = "[" + ",".join(texts) + "]"
    assert outcome(jsonstrict.loads, document) == outcome(stdlib, document)
    for text in texts:
        assert outcome(jsonstrict.loads, text) == outcome(stdlib, text), text
