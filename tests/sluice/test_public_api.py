"""The public API is deliberate: this test pins it."""

import sluice


def test_public_names() -> None:
    assert sorted(sluice.__all__) == [
        "Agent",
        "AgentContext",
        "FatalError",
        "InvalidApplication",
        "KafkaError",
        "LocalKafkaError",
        "Processor",
        "Record",
        "Retry",
        "Service",
        "Sink",
        "SkipRecord",
        "SluiceError",
        "Source",
        "TopicProducer",
        "__version__",
    ]
    for name in sluice.__all__:
        assert hasattr(sluice, name)


def test_errors_also_inherit_builtins() -> None:
    assert issubclass(sluice.InvalidApplication, ValueError)
    assert issubclass(sluice.KafkaError, RuntimeError)
    assert issubclass(sluice.InvalidApplication, sluice.SluiceError)
