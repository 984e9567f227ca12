"""Objects as YAML documents, the way ``kubectl apply -f`` and people read them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from knative.labels import Manifest

__all__ = ["to_yaml"]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the application files) as literal blocks; keys in insertion order."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def to_yaml(objects: Iterable[Manifest]) -> str:
    """A multi-document YAML stream, one document per object."""
    documents: list[Any] = list(objects)
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
