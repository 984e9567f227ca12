"""``re-rank``'s configuration checked at validation, with file and line."""

from __future__ import annotations

import pytest

from sluice.application import load_application
from sluice.errors import InvalidApplication
from tests.sluice.application.builtin_agents import agent, plain
from tests.sluice.application.conftest import WriteApp

MMR = (
    "      field: value.docs\n      output-field: value.docs\n      algorithm: MMR\n"
    "      query-text: value.q\n      text-field: record.text\n"
)


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        (
            "      field: value.docs\n",
            "pipeline.yaml:9 pipeline[0].configuration.output-field: is required by re-rank",
        ),
        (
            MMR,
            "pipeline.yaml:9 pipeline[0].configuration.embeddings-field: is required with "
            "algorithm MMR",
        ),
        (
            MMR + "      embeddings-field: record.e\n      lambda: much\n",
            "pipeline.yaml:16 pipeline[0].configuration.lambda: must be a number, got 'much'",
        ),
        (
            "      field: value.docs\n      output-field: docs\n",
            "pipeline.yaml:11 pipeline[0].configuration.output-field: invalid field name 'docs'",
        ),
    ],
    ids=["no-output-field", "mmr-embeddings", "lambda", "output-name"],
)
def test_bad_configuration_is_an_error_with_file_and_line(
    write_app: WriteApp, configuration: str, expected: str
) -> None:
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app(agent("re-rank", configuration)))
    rendered = [plain(p) for p in caught.value.problems]
    assert any(text.startswith(expected) for text in rendered), rendered


def test_langstream_configuration_loads(write_app: WriteApp) -> None:
    # RerankAgentRunnerIT's re-rank step.
    configuration = (
        "      max: 8\n      field: value.related_documents\n      query-text: value.question\n"
        "      query-embeddings: value.question_embeddings\n"
        "      output-field: value.related_documents\n      text-field: record.text\n"
        "      embeddings-field: record.embeddings_vector\n      algorithm: MMR\n"
        "      lambda: 0.5\n      k1: 1.5\n      b: 0.7\n"
    )
    load_application(write_app(agent("re-rank", configuration)))
