from __future__ import annotations

import re

import pytest

from knative.names import dns_label, executor_name, label_value

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("my-app", "counter"), "my-app-counter"),
        (("My_App", "step.1"), "my-app-step-1"),
        (("2fast", "x"), "s-2fast-x"),
        (("-", "-"), "s"),
    ],
)
def test_dns_label(parts: tuple[str, ...], expected: str) -> None:
    assert dns_label(*parts) == expected


def test_long_names_are_cut_with_a_stable_hash() -> None:
    app = "a-rather-long-application-name"
    first = executor_name(app, "pipeline-python-processor-" + "x" * 30)
    second = executor_name(app, "pipeline-python-processor-" + "x" * 31)
    assert len(first) == len(second) == 63
    assert DNS_1035.match(first) and DNS_1035.match(second)
    assert first != second
    assert first == executor_name(app, "pipeline-python-processor-" + "x" * 30)
    assert first.startswith("a-rather-long-application-name-pipeline-python-proce")


def test_cut_names_do_not_end_on_a_dash() -> None:
    name = dns_label("a" * 53, "-b" * 20)
    assert len(name) <= 63 and DNS_1035.match(name)


def test_label_values() -> None:
    assert label_value("") == ""
    assert label_value("My_App.v1") == "My_App.v1"
    assert label_value("_x y_") == "x-y"
    long = label_value("agent-" * 20)
    assert len(long) <= 63 and re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", long)
