"""An application of one built-in agent, for the configuration-check tests of each family, and
problems rendered as ``file:line path: message`` to compare them."""

from __future__ import annotations

from sluice.errors import Problem

TOPICS = """
topics:
  - name: questions
    creation-mode: create-if-not-exists
  - name: answers
"""


def agent(
    agent_type: str, configuration: str, *, source: bool = False, topics: str = TOPICS
) -> dict[str, str]:
    """``pipeline.yaml`` with one agent of ``agent_type`` (a source writes to ``answers``, any
    other reads ``questions``) and ``configuration`` (indented YAML lines)."""
    wiring = "    output: answers\n" if source else "    input: questions\n    output: answers\n"
    return {
        "pipeline.yaml": topics
        + f"pipeline:\n  - type: {agent_type}\n{wiring}"
        + f"    configuration:\n{configuration}"
    }


def plain(problem: Problem) -> str:
    """Problems inside an agent read 'agent "x" (file:line) path: message'; this gives
    'file:line path: message', the same facts."""
    where = problem.file if problem.line is None else f"{problem.file}:{problem.line}"
    return f"{where} {problem.path}: {problem.message}"
