"""Applications Knative cannot run as written: refused with every problem named."""

from __future__ import annotations

import pytest

from knative import ManifestError
from tests.knative.conftest import WriteApp, build

TOPICS = """
topics:
  - {name: in, creation-mode: create-if-not-exists}
  - {name: out, creation-mode: create-if-not-exists}
"""


def test_a_disk_with_parallelism_above_one_is_refused(write_app: WriteApp) -> None:
    app = write_app(
        {
            "pipeline.yaml": TOPICS
            + """
pipeline:
  - id: first
    type: identity
    input: in
    output: out
  - id: counter
    type: python-processor
    input: out
    configuration: {className: m.Counter}
    resources:
      parallelism: 3
      disk: {enabled: true, size: 50M}
"""
        }
    )
    with pytest.raises(ManifestError) as caught:
        build(app)
    [problem] = caught.value.problems
    assert (problem.file, problem.path) == ("pipeline.yaml", "pipeline[1].resources")
    message = str(caught.value)
    assert 'agent "counter"' in message
    assert "pipeline.yaml pipeline[1].resources" in message
    assert "parallelism 3" in message and "ReadWriteOnce" in message
    assert isinstance(caught.value, ValueError)


def test_a_disk_type_without_storage_class_is_refused(write_app: WriteApp) -> None:
    app = write_app(
        {
            "pipeline.yaml": TOPICS
            + """
pipeline:
  - id: counter
    type: identity
    input: in
    resources: {disk: {enabled: true, type: nvme}}
"""
        }
    )
    with pytest.raises(ManifestError) as caught:
        build(app)
    [problem] = caught.value.problems
    assert problem.path == "pipeline[0].resources.disk.type"
    assert '"nvme"' in problem.message and "default, fast" in problem.message
    assert "storageClasses" in problem.message


def test_every_problem_is_listed_at_once(write_app: WriteApp) -> None:
    app = write_app(
        {
            "pipeline.yaml": TOPICS
            + """
resources: {parallelism: 2, disk: {enabled: true, type: nvme}}
pipeline:
  - {id: a, type: identity, input: in, output: out}
  - {id: b, type: identity, input: out, configuration: {concurrency: 0}}
"""
        }
    )
    with pytest.raises(ManifestError) as caught:
        build(app)
    paths = sorted(p.path for p in caught.value.problems)
    assert paths == [
        "pipeline[0].resources",
        "pipeline[0].resources.disk.type",
        "pipeline[1].configuration.concurrency",
        "pipeline[1].resources",
        "pipeline[1].resources.disk.type",
    ]
    assert "5 problems" in str(caught.value)


def test_ids_that_get_the_same_name_are_refused(write_app: WriteApp) -> None:
    app = write_app(
        {
            "pipeline.yaml": TOPICS
            + """
pipeline:
  - {id: to_upper, type: identity, input: in, output: out}
  - {id: to-upper, type: identity, input: out}
"""
        }
    )
    with pytest.raises(
        ManifestError, match='Service "my-app-to-upper" would be generated for both'
    ):
        build(app)


def test_an_executor_called_gateway_clashes_with_the_gateway(write_app: WriteApp) -> None:
    app = write_app(
        {
            "pipeline.yaml": TOPICS + "pipeline: [{id: gateway, type: identity, input: in}]\n",
            "gateways.yaml": "gateways: [{id: g, type: produce, topic: in}]\n",
        }
    )
    with pytest.raises(ManifestError) as caught:
        build(app)
    assert 'executor "gateway" and the gateway' in str(caught.value)


def test_a_file_name_that_is_no_config_map_key_is_refused(write_app: WriteApp) -> None:
    app = write_app(
        {"my pipeline.yaml": TOPICS + "pipeline: [{id: a, type: identity, input: in}]\n"}
    )
    with pytest.raises(ManifestError) as caught:
        build(app)
    [problem] = caught.value.problems
    assert problem.file == "my pipeline.yaml"
    assert "rename the file" in problem.message
