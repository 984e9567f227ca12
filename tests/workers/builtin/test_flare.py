"""``flare-controller`` on in-memory records: the low-confidence spans (LangStream's rules: a
probability under ``min-prob``, single word-character tokens only, padding, merging closer than
``min-token-gap``), the loop (spans written, the record routed to ``loop-topic``), the iteration
limit, and errors.

LangStream has no unit test of the agent; its ``FlareControllerAgentRunnerIT`` answer (tokens and
log probabilities of a streamed ``gpt-3.5-turbo-instruct`` completion) is the first case here.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.builtin_config import BadConfiguration
from sluice.record import Record
from workers.builtin import BUILTIN_AGENTS
from workers.builtin.flare import FlareError, SpanSettings, is_unsure, low_confidence_spans

# FlareControllerAgentRunnerIT's streamed answer, one token per event after the first "\n\n".
IT_TOKENS = [
    "\n\n", "I", " am", " an", " AI", " language", " model", " and", " I", " do", " not",
    " have", " personal", " experiences", " or", " the",
]  # fmt: skip
IT_LOGPROBS = [
    -0.16865084, -0.50947005, -0.81064594, -0.0639758, -0.007819127, -4.2176867,
    -0.00009771052, -0.38906613, -1.1028589, -0.18535662, -0.00009115311, -0.0122308275,
    -0.9290634, -0.2772571, -0.06607247, -2.1178281,
]  # fmt: skip

LETTERS = [chr(ord("a") + i) for i in range(12)]
SURE, UNSURE = -0.1, -3.0

CONFIG = {
    "tokens-field": "value.tokens.tokens",
    "logprobs-field": "value.tokens.logprobs",
    "loop-topic": "flare-loop",
    "retrieve-documents-field": "value.documents_to_retrieve",
}


def logprobs_with(unsure: set[int], size: int = len(LETTERS)) -> list[float]:
    return [UNSURE if i in unsure else SURE for i in range(size)]


def spans(unsure: set[int], **settings: Any) -> list[str]:
    return low_confidence_spans(LETTERS, logprobs_with(unsure), SpanSettings(**settings))


def test_the_runner_it_answer_has_no_low_confidence_span() -> None:
    # " language" is improbable (p = 0.015) but several characters long: never unsure.
    assert low_confidence_spans(IT_TOKENS, IT_LOGPROBS) == []
    assert math.exp(IT_LOGPROBS[5]) < 0.2
    assert not is_unsure(" language", IT_LOGPROBS[5], 0.2)
    # "I" is one word character but probable enough (p = 0.60).
    assert not is_unsure("I", IT_LOGPROBS[1], 0.2)
    assert is_unsure("I", IT_LOGPROBS[1], 0.61)


@pytest.mark.parametrize(
    ("probability", "min_prob", "unsure"),
    [(0.19, 0.2, True), (0.2, 0.2, False), (0.21, 0.2, False), (0.19, 0.1, False), (0.5, 1, True)],
)
def test_min_prob_is_a_strict_bound_on_the_probability(
    probability: float, min_prob: float, unsure: bool
) -> None:
    assert is_unsure("x", math.log(probability), min_prob) is unsure


@pytest.mark.parametrize(
    ("token", "unsure"),
    [
        ("9", True),
        ("a", True),
        ("Z", True),
        ("_", True),
        (" a", False),
        ("a ", False),
        ("ab", False),
        ("12", False),
        (".", False),
        ("-", False),
        ("", False),
        ("\n", False),
        ("é", False),  # Java's \w is ASCII
        ("٣", False),  # an Arabic-Indic digit: Unicode \w, not Java's
    ],
)
def test_only_single_word_character_tokens_are_unsure(token: str, unsure: bool) -> None:
    assert is_unsure(token, UNSURE, 0.2) is unsure


def test_a_null_or_certain_log_probability_is_never_unsure() -> None:
    assert not is_unsure("a", None, 0.2)
    assert not is_unsure("a", 0.0, 1.0)
    assert low_confidence_spans(["a", "b"], [None, UNSURE]) == ["b"]


def test_a_span_is_the_unsure_token_and_num_pad_tokens_after_it() -> None:
    assert spans({3}) == ["def"]
    assert spans({3}, num_pad_tokens=0) == ["d"]
    assert spans({3}, num_pad_tokens=4) == ["defgh"]


def test_a_span_stops_at_the_last_token() -> None:
    assert spans({10}) == ["kl"]
    assert spans({11}, num_pad_tokens=5) == ["l"]


def test_unsure_tokens_closer_than_min_token_gap_make_one_span() -> None:
    # 5 - 2 = 3 < 5: the span [2, 5) grows to 5's end, 8.
    assert spans({2, 5}) == ["cdefgh"]
    # 7 - 2 = 5 is not < 5: two spans.
    assert spans({2, 7}) == ["cde", "hij"]
    assert spans({2, 7}, min_token_gap=6) == ["cdefghij"]
    # The gap is measured from the previous unsure token, not from the span's start.
    assert spans({1, 4, 7, 10}) == ["bcdefghijkl"]
    # Spans that overlap without merging each keep their own tokens.
    assert spans({2, 4}, min_token_gap=2) == ["cde", "efg"]
    assert spans({2, 3}, min_token_gap=0) == ["cde", "def"]


def test_no_unsure_token_no_span() -> None:
    assert spans(set()) == []
    assert low_confidence_spans([], []) == []


def test_flare_controller_is_a_runnable_processor() -> None:
    assert AGENT_TYPES["flare-controller"].runnable
    assert AGENT_TYPES["flare-controller"].component == "processor"


async def run(value: Any, config: dict[str, Any] | None = None, **headers: str) -> list[Record]:
    agent = BUILTIN_AGENTS["flare-controller"]()
    await agent.init({**CONFIG, **(config or {}), "resources": {}, "globals": {}})
    text = json.dumps(value)
    return await agent.process(Record(text, key="k", headers=headers))  # type: ignore[union-attr]


def answer(unsure: set[int], **more: Any) -> dict[str, Any]:
    tokens = {"tokens": LETTERS, "logprobs": logprobs_with(unsure)}
    return {"text": "the question", "tokens": tokens, "documents_to_retrieve": [], **more}


async def test_unsure_spans_go_to_the_loop_topic_in_the_retrieve_documents_field() -> None:
    [out] = await run(answer({1, 9}, flare_iterations=3), session="s1")
    assert out.destination == "flare-loop"
    assert out.key == "k" and out.headers["session"] == "s1"
    value = json.loads(out.value)
    assert value["documents_to_retrieve"] == ["bcd", "jkl"]
    assert value == {**answer({1, 9}, flare_iterations=3), "documents_to_retrieve": ["bcd", "jkl"]}


async def test_a_confident_answer_goes_on_unchanged() -> None:
    text_in = json.dumps(answer(set()))
    agent = BUILTIN_AGENTS["flare-controller"]()
    await agent.init(dict(CONFIG))
    record = Record(text_in.replace(",", " , "))
    assert await agent.process(record) == [record]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("iterations", "loops"), [(None, True), (0, True), (10, True), (11, False), ("11", False)]
)
async def test_a_record_that_looped_more_than_max_iterations_goes_on(
    iterations: Any, loops: bool
) -> None:
    value = answer({4}) if iterations is None else answer({4}, flare_iterations=iterations)
    [out] = await run(value)
    assert (out.destination == "flare-loop") is loops
    if not loops:
        assert json.loads(out.value) == value


async def test_max_iterations_and_num_iterations_field_are_configurable() -> None:
    config = {"max-iterations": 1, "num-iterations-field": "fn:toInt(properties.loops)"}
    [looped] = await run(answer({4}), config, loops="1")
    [passed] = await run(answer({4}), config, loops="2")
    assert looped.destination == "flare-loop"
    assert passed.destination is None


async def test_the_span_settings_are_configurable() -> None:
    config = {"min-prob": 0.01, "num-pad-tokens": 0, "min-token-gap": 1}
    [out] = await run(answer({4}), config)
    assert out.destination is None  # exp(-3) = 0.05 is not < 0.01
    [out] = await run(answer({4, 5}), {"min-prob": 0.1, "num-pad-tokens": 0, "min-token-gap": 1})
    assert json.loads(out.value)["documents_to_retrieve"] == ["e", "f"]


async def test_spans_can_go_to_a_header() -> None:
    [out] = await run(answer({0}), {"retrieve-documents-field": "properties.spans"})
    assert out.headers["spans"] == '["abc"]'
    assert out.destination == "flare-loop"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"tokens": {"tokens": "abc", "logprobs": [-1.0]}},
            "flare-controller: tokens-field 'value.tokens.tokens' must give a list of texts, "
            "got str 'abc'",
        ),
        (
            {"tokens": {"logprobs": [-1.0]}},
            "flare-controller: tokens-field 'value.tokens.tokens' must give a list of texts, "
            "got null",
        ),
        (
            {"tokens": {"tokens": ["a"], "logprobs": ["low"]}},
            "flare-controller: logprobs-field 'value.tokens.logprobs' must give a list of "
            "numbers, got a list holding str 'low'",
        ),
        (
            {"tokens": {"tokens": ["a", "b"], "logprobs": [-1.0]}},
            "flare-controller: 2 tokens ('value.tokens.tokens') but 1 log probabilities "
            "('value.tokens.logprobs')",
        ),
        (
            {"flare_iterations": "many", "tokens": {"tokens": [], "logprobs": []}},
            "flare-controller: num-iterations-field 'value.flare_iterations' must give a whole "
            "number, got str 'many'",
        ),
    ],
    ids=["tokens-text", "tokens-missing", "logprob-text", "lengths", "iterations"],
)
async def test_a_record_it_cannot_read_fails_with_a_clear_message(
    value: dict[str, Any], message: str
) -> None:
    with pytest.raises(FlareError) as caught:
        await run(value)
    assert str(caught.value) == message


async def test_a_bad_configuration_names_every_problem() -> None:
    agent = BUILTIN_AGENTS["flare-controller"]()
    with pytest.raises(BadConfiguration) as caught:
        await agent.init({"tokens-field": "value.tokens.tokens", "min-prob": 3})
    assert str(caught.value) == (
        "flare-controller: logprobs-field: is required by flare-controller; "
        "loop-topic: is required by flare-controller; "
        "retrieve-documents-field: is required by flare-controller"
    )
    with pytest.raises(BadConfiguration) as caught:
        await agent.init({**CONFIG, "min-prob": 3, "retrieve-documents-field": "docs"})
    assert caught.value.problems == [
        "min-prob: must be a probability between 0 and 1, got 3",
        "retrieve-documents-field: invalid field name 'docs': it should be value, key, "
        "destinationTopic, messageKey, or start with value., key. or properties.",
    ]
    with pytest.raises(BadConfiguration, match="max-iterations: must be at least 0, got -1"):
        await agent.init({**CONFIG, "max-iterations": -1})
