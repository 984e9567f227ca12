"""The AI completion agents' configuration checked at validation, with file and line."""

from __future__ import annotations

import pytest

from sluice.application import load_application
from sluice.errors import InvalidApplication
from tests.sluice.application.builtin_agents import TOPICS, agent, plain
from tests.sluice.application.conftest import WriteApp


@pytest.mark.parametrize(
    ("agent_type", "configuration", "expected"),
    [
        (
            "ai-chat-completions",
            "      messages: [{content: hi}]\n",
            "pipeline.yaml:9 pipeline[0].configuration.model: is required by ai-chat-completions",
        ),
        (
            "ai-chat-completions",
            "      model: m\n",
            "pipeline.yaml:9 pipeline[0].configuration.messages: is required by "
            "ai-chat-completions",
        ),
        (
            "ai-chat-completions",
            "      model: m\n      messages:\n        - role: user\n          content: '{{ value'\n",
            "pipeline.yaml:13 pipeline[0].configuration.messages[0].content: is not a valid "
            "Mustache template",
        ),
        (
            "ai-chat-completions",
            "      model: m\n      messages: [{content: hi}]\n      temperature: hot\n",
            "pipeline.yaml:12 pipeline[0].configuration.temperature: must be a number, got 'hot'",
        ),
        (
            "ai-chat-completions",
            "      model: m\n      messages: [{content: hi}]\n      min-chunks-per-message: 0\n",
            "pipeline.yaml:12 pipeline[0].configuration.min-chunks-per-message: must be at least 1",
        ),
        (
            "ai-text-completions",
            "      model: m\n      prompt:\n        - '{{# value.a }}'\n",
            "pipeline.yaml:12 pipeline[0].configuration.prompt[0]: is not a valid Mustache template",
        ),
        (
            "ai-text-completions",
            "      model: m\n      prompt: [hi]\n      logit-bias: {'50256': lots}\n",
            "pipeline.yaml:12 pipeline[0].configuration.logit-bias.50256: must be a whole number",
        ),
    ],
)
def test_bad_configuration_is_an_error_with_file_and_line(
    write_app: WriteApp, agent_type: str, configuration: str, expected: str
) -> None:
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app(agent(agent_type, configuration)))
    rendered = [plain(p) for p in caught.value.problems]
    assert any(text.startswith(expected) for text in rendered), rendered


def test_valid_completion_agents_load(write_app: WriteApp) -> None:
    app = write_app(
        {
            "configuration.yaml": """
configuration:
  resources:
    - type: open-ai-configuration
      name: OpenAI Azure configuration
      configuration:
        url: https://example.openai.azure.com
        access-key: sk-x
        provider: azure
""",
            "pipeline.yaml": TOPICS
            + """
  - name: chunks
pipeline:
  - type: ai-chat-completions
    input: questions
    configuration:
      model: gpt-35-turbo
      completion-field: value.answer
      log-field: value.prompt
      stream-to-topic: chunks
      stream-response-completion-field: value
      min-chunks-per-message: 20
      temperature: 0.2
      logit-bias: {"50256": -100}
      stop: ["\\n"]
      messages:
        - role: user
          content: "What can you tell me about {{{ value.question }}}?"
  - type: ai-text-completions
    output: answers
    configuration:
      model: gpt-3.5-turbo-instruct
      prompt: ["{{{ value.question }}}"]
      logprobs: 1
      logprobs-field: value.lp
""",
        }
    )
    load_application(app)
