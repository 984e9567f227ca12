"""A pretend language model: answers from a template, one word at a time, with a delay.

Stands in for a real model so that the example runs anywhere, offline. Swap ``complete`` for
your model's streaming client (it only has to be an async iterator of text pieces).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


def answer_for(question: str) -> str:
    """The whole answer the model gives to ``question``."""
    question = " ".join(question.split()) or "nothing"
    return (
        f'You asked: "{question}". I am a pretend language model, so I answer every '
        "question the same way, one word at a time, to show a streamed answer."
    )


async def complete(question: str, *, delay: float = 0.15) -> AsyncIterator[str]:
    """The answer to ``question`` in pieces: each word with the space after it."""
    words = answer_for(question).split(" ")
    for index, word in enumerate(words):
        if delay:
            await asyncio.sleep(delay)
        yield word if index == len(words) - 1 else word + " "
