"""Unit tests for your agents: run them on records in memory, without Kafka or a worker.

``sluice.testing`` runs a processor, a source, a sink or a service's ASGI app through the code
the worker runs them with: the same loader and adapter (so LangStream-style classes that subclass
nothing, ``SimpleRecord``, dict and tuple records, futures and ``async def`` hooks behave the
same), the same chain (input headers carried to the outputs), the same ``errors`` policy
(retries, ``Retry``, ``SkipRecord``, ``FatalError``, then skip, dead-letter or fail), and the
same encoding to and from Kafka records, so what your test sees is what the topics would hold.
Retries are counted and their backoff reported, never waited for.

In a plain test function::

    from sluice.testing import run_processor
    from my_app import Answer

    def test_answer() -> None:
        results = run_processor(Answer(), ["hello"], config={"greeting": "You said"})
        assert results.values == ["You said: hello"]

In an async test, hold the agent open across calls::

    from sluice.testing import AgentHarness

    async def test_dead_letter() -> None:
        errors = {"retries": 2, "on-failure": "dead-letter"}
        async with AgentHarness("my_app.Answer", app_dir=".", errors=errors) as harness:
            results = await harness.send({"value": "boom", "headers": {"session": "s1"}})
        letter = results.dead_letters[0]
        assert letter.headers["error-class"] == "builtins.ValueError"

A runnable example, with a LangStream-style processor returning a dict record:

>>> class Split:
...     def process(self, record):
...         return [{"value": word} for word in record.value().split()]
>>> results = run_processor(Split(), [{"value": "a b", "headers": {"session-id": "s1"}}])
>>> [(r.value, r.headers["session-id"]) for r in results.outputs]
[('a', 's1'), ('b', 's1')]

Built-in agents run the same way, by type (``AgentHarness("drop-fields", config=...)``), and so
does a pipeline as deployed: :meth:`ExecutorHarness.from_application` loads the executor the planner
makes of an agent and its fused neighbours (``compute``, ``drop``, your processor,
``document-to-json``...) and runs them as the worker's chain does, with one ``errors`` policy
for the whole chain; a record an agent routes elsewhere (``dispatch``) leaves the chain for its
topic (see :mod:`sluice.testing.executor`):

>>> import tempfile
>>> from pathlib import Path
>>> app = Path(tempfile.mkdtemp())
>>> _ = (app / "pipeline.yaml").write_text('''
... topics: [{name: questions}, {name: answers}]
... pipeline:
...   - {id: shout, type: compute, input: questions,
...      configuration: {fields: [{name: value, expression: "fn:uppercase(value)"}]}}
...   - {id: hush, type: drop, output: answers, configuration: {when: "value == 'SECRET'"}}
... ''')
>>> run_processor(ExecutorHarness.from_application(app, "shout"), ["hi", "secret"]).values
['HI']
>>> import shutil; shutil.rmtree(app)

Layering: this module drives the worker's code (``workers``), so it sits on the top layer, beside
the CLI; ``sluice``'s own ``__init__`` does not import it, and the SDK never depends on it.
Not covered: an executor's ``configuration.environment`` (set the variables in your test), an
output's size against the topic's ``max.message.bytes``, whether a routed record's topic exists,
and services that run their own server from ``main()``.
"""

from sluice.testing.executor import ExecutorHarness
from sluice.testing.harness import (
    AgentHarness,
    Component,
    HarnessError,
    MemoryTopicProducer,
    as_record,
    errors_spec,
    infer_component,
    run_processor,
    run_sink,
    run_source,
)
from sluice.testing.results import Delivery, Outcome, Results
from workers.errors import ExecutorFailed

__all__ = [
    "AgentHarness",
    "Component",
    "Delivery",
    "ExecutorFailed",
    "ExecutorHarness",
    "HarnessError",
    "MemoryTopicProducer",
    "Outcome",
    "Results",
    "as_record",
    "errors_spec",
    "infer_component",
    "run_processor",
    "run_sink",
    "run_source",
]
