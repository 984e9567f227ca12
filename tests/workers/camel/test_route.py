"""The generated route and camel-main properties (the JVM tests run them for real)."""

from __future__ import annotations

from pathlib import Path

import yaml

from workers.camel.route import main_properties, route_yaml


def test_route_reads_the_endpoint_and_posts_to_the_bridge() -> None:
    uri = "file:/in?move=done%2F%24%7Bfile%3Aname%7D&include=a'b: c"
    routes = yaml.safe_load(route_yaml(uri, 4321))
    source, started = (entry["route"] for entry in routes)
    assert source["from"]["uri"] == uri  # YAML quoting keeps it intact
    last = source["from"]["steps"][-1]["to"]
    assert last["uri"] == "http://127.0.0.1:4321/exchange"
    assert last["parameters"]["httpMethod"] == "POST"
    assert last["parameters"]["skipRequestHeaders"] is True
    assert started["from"]["uri"] == "timer:sluice-camel-started"
    assert started["from"]["steps"][0]["to"]["uri"] == "http://127.0.0.1:4321/started"
    assert "&id" not in route_yaml(uri, 4321)  # no YAML anchors for Camel's loader


def test_main_properties() -> None:
    text = main_properties(Path("/tmp/x y/route.camel.yaml"), "sluice-a")
    assert "camel.main.routes-include-pattern=file\\:/tmp/x y/route.camel.yaml\n" in text
    assert "camel.main.name=sluice-a\n" in text
