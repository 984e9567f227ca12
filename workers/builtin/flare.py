"""LangStream's ``flare-controller``: the loop of the FLARE pattern (forward-looking active
retrieval).

A text completion asked for log probabilities (``ai-text-completions`` with ``logprobs`` and
``logprobs-field``) holds its tokens and their log probabilities. This agent finds the spans of
the answer the model was unsure of; when there are some, it writes them (a list of texts) to
``retrieve-documents-field`` and sends the record to ``loop-topic``, where the pipeline retrieves
documents about them and asks the model again. A record with no such span, or one that looped
more than ``max-iterations`` times, goes on to the agent's output unchanged. Nothing here counts
the iterations: the pipeline increments ``num-iterations-field`` (a ``compute`` step in the
loop), and this agent only reads it.

The spans are LangStream's (:func:`low_confidence_spans`):

- a token is *unsure* when ``exp(log probability) < min-prob`` and the token is exactly one
  ASCII word character (``[A-Za-z0-9_]``, Java's ``\\w`` matched against the whole token: a
  token such as ``" Paris"`` never qualifies);
- each unsure token ``i`` opens the span ``[i, i + num-pad-tokens + 1)``; an unsure token fewer
  than ``min-token-gap`` tokens after the previous unsure one extends the current span to its
  own end instead;
- a span's text is its tokens joined; empty texts are left out.

>>> low_confidence_spans(["I", " was", " born", " in", " 1", "9", "7", "2", "."],
...                      [-0.1, -0.1, -0.1, -0.1, -0.1, -3.0, -0.1, -0.1, -0.1])
['972']

The record written to ``loop-topic`` is the working record with the spans set, its JSON object
value going back as JSON text, as every GenAI-toolkit step writes it; the executor writes it there
and acknowledges it before the input's offset is committed (``Record.destination``), so a
crash never loses it. A span that would run past the last token stops there (LangStream failed
the record), a log probability that is null is not unsure, and tokens and log probabilities of
different lengths, or that are not lists, fail the record (:class:`FlareError`), and the
agent's ``errors`` policy decides.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sluice.application.builtin_config import read_configuration
from sluice.expressions import Expression, compile_expression
from sluice.record import Record
from workers.builtin.records import context_of, parse_field_name, set_field, to_record, to_working
from workers.errors import WorkerError

AGENT_TYPE = "flare-controller"

log = logging.getLogger("sluice.agent.flare-controller")

_WORD_CHARACTER = re.compile(r"\w", re.ASCII)


class FlareError(WorkerError, ValueError):
    """A record ``flare-controller`` cannot read: its tokens, log probabilities or iteration
    count are not what the configuration's expressions should give."""


@dataclass(frozen=True)
class SpanSettings:
    """How unsure tokens become spans (LangStream's defaults)."""

    min_prob: float = 0.2
    min_token_gap: int = 5
    num_pad_tokens: int = 2


def is_unsure(token: str, logprob: float | None, min_prob: float) -> bool:
    """Whether ``token`` is a low-confidence token: one word character, less probable than
    ``min_prob`` (a null log probability is not).

    >>> is_unsure("9", -3.0, 0.2), is_unsure(" 9", -3.0, 0.2), is_unsure("9", -1.0, 0.2)
    (True, False, False)
    """
    if logprob is None or logprob >= 0 or _WORD_CHARACTER.fullmatch(token) is None:
        return False
    return math.exp(logprob) < min_prob


def low_confidence_spans(
    tokens: Sequence[str],
    logprobs: Sequence[float | None],
    settings: SpanSettings = SpanSettings(),
) -> list[str]:
    """The texts of the spans around the unsure tokens, in order (see the module)."""
    unsure = [
        i
        for i, (token, logprob) in enumerate(zip(tokens, logprobs, strict=True))
        if is_unsure(token, logprob, settings.min_prob)
    ]
    spans: list[list[int]] = []
    previous: int | None = None
    for index in unsure:
        end = index + settings.num_pad_tokens + 1
        if previous is not None and index - previous < settings.min_token_gap:
            spans[-1][1] = end
        else:
            spans.append([index, end])
        previous = index
    texts = ("".join(tokens[start:end]) for start, end in spans)
    return [text for text in texts if text]


class FlareController:
    """The ``flare-controller`` processor (see the module's documentation)."""

    def __init__(self) -> None:
        self.settings = SpanSettings()
        self.max_iterations = 10

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration(AGENT_TYPE, config)
        self.tokens = compile_expression(checked["tokens-field"])
        self.logprobs = compile_expression(checked["logprobs-field"])
        self.iterations = compile_expression(checked["num-iterations-field"])
        self.loop_topic: str = checked["loop-topic"]
        self.target: str = checked["retrieve-documents-field"]
        parse_field_name(self.target)
        self.max_iterations = checked["max-iterations"]
        self.settings = SpanSettings(
            min_prob=float(checked["min-prob"]),
            min_token_gap=checked["min-token-gap"],
            num_pad_tokens=checked["num-pad-tokens"],
        )

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def process(self, record: Record) -> list[Record]:
        working = to_working(record)
        context = context_of(working)
        done = _count(self.iterations, self.iterations.evaluate(context))
        if done > self.max_iterations:
            log.debug("a record looped %d times (max %d): it goes on", done, self.max_iterations)
            return [record]
        tokens = _tokens(self.tokens, self.tokens.evaluate(context))
        logprobs = _logprobs(self.logprobs, self.logprobs.evaluate(context))
        if len(tokens) != len(logprobs):
            raise FlareError(
                f"{AGENT_TYPE}: {len(tokens)} tokens ({self.tokens.text!r}) but "
                f"{len(logprobs)} log probabilities ({self.logprobs.text!r})"
            )
        spans = low_confidence_spans(tokens, logprobs, self.settings)
        if not spans:
            return [record]
        log.debug("low-confidence spans %r: the record goes to %s", spans, self.loop_topic)
        set_field(working, spans, self.target)
        return [to_record(working, record).to(self.loop_topic)]


def _tokens(expression: Expression, found: Any) -> list[str]:
    if not isinstance(found, list) or not all(isinstance(t, str) for t in found):
        raise FlareError(
            f"{AGENT_TYPE}: tokens-field {expression.text!r} must give a list of texts, "
            f"got {_kind(found)}"
        )
    return found


def _logprobs(expression: Expression, found: Any) -> list[float | None]:
    if not isinstance(found, list) or not all(
        item is None or (isinstance(item, int | float) and not isinstance(item, bool))
        for item in found
    ):
        raise FlareError(
            f"{AGENT_TYPE}: logprobs-field {expression.text!r} must give a list of numbers, "
            f"got {_kind(found)}"
        )
    return [None if item is None else float(item) for item in found]


def _count(expression: Expression, found: Any) -> int:
    """The iteration count as LangStream's ``Integer`` coercion reads it: null is 0, a
    decimal is truncated, a text must hold a whole number."""
    if found is None:
        return 0
    if isinstance(found, int | float) and not isinstance(found, bool):
        if isinstance(found, float) and not math.isfinite(found):
            raise FlareError(f"{AGENT_TYPE}: num-iterations-field {expression.text!r} is {found}")
        return int(found)
    if isinstance(found, str) and re.fullmatch(r"\s*[+-]?\d+\s*", found):
        return int(found)
    raise FlareError(
        f"{AGENT_TYPE}: num-iterations-field {expression.text!r} must give a whole number, "
        f"got {_kind(found)}"
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list holding " + ", ".join(sorted({_kind(v) for v in value}))
    return f"{type(value).__name__} {value!r}"[:80]
