"""The ``create-statements`` of LangStream's ``milvus-collection`` asset (pure): each a JSON
object whose ``command`` says what it does, with the keys of LangStream's Milvus client builders.

- ``create-collection``: ``collection-name``, ``description``, ``shards-num``,
  ``enable-dynamic-field`` and ``field-types``, a list of fields with ``name``, ``data-type``
  (Milvus's type names in any case: ``Int64``, ``VarChar``, ``FloatVector``...),
  ``primary-key``, ``auto-id``, ``max-length``, ``dimension``, ``description``,
  ``partition-key``, ``element-type`` and ``max-capacity`` (arrays).
- ``create-index``: ``field-name``, ``index-name``, ``index-type`` (``AUTOINDEX``, ``HNSW``...),
  ``metric-type`` (``L2``, ``IP``, ``COSINE``...) and ``extra-param`` (JSON text of the index's
  parameters).
- ``load-collection``: loads the asset's collection (searches need it loaded).
- ``create-simple-collection``: ``dimension``, ``primary-field`` (``id``), ``vector-field``
  (``vector``), ``metric-type`` (``L2``), ``auto-id`` (false), ``description``: a primary key,
  a vector with an index, other fields dynamic, loaded.

``collection-name`` defaults to the asset's. Unknown commands, data types and keys of the wrong
type are errors naming the statement's position and the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workers.builtin.datasources.errors import DataSourceError

__all__ = [
    "DATA_TYPES",
    "CreateCollection",
    "CreateIndex",
    "CreateSimpleCollection",
    "FieldSpec",
    "LoadCollection",
    "Statement",
    "parse_statement",
]

DATA_TYPES = (
    "BOOL",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FLOAT",
    "DOUBLE",
    "VARCHAR",
    "JSON",
    "ARRAY",
    "BINARY_VECTOR",
    "FLOAT_VECTOR",
    "FLOAT16_VECTOR",
    "BFLOAT16_VECTOR",
    "SPARSE_FLOAT_VECTOR",
)
"""Milvus's field types as pymilvus names them (``FloatVector`` is ``FLOAT_VECTOR``)."""
_BY_LOOSE_NAME = {name.replace("_", ""): name for name in DATA_TYPES}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    data_type: str
    primary_key: bool = False
    auto_id: bool = False
    partition_key: bool = False
    max_length: int | None = None
    dimension: int | None = None
    element_type: str | None = None
    max_capacity: int | None = None
    description: str = ""


@dataclass(frozen=True)
class CreateCollection:
    collection: str
    fields: tuple[FieldSpec, ...]
    description: str = ""
    shards: int | None = None
    dynamic_fields: bool = False


@dataclass(frozen=True)
class CreateIndex:
    collection: str
    field_name: str
    index_name: str = ""
    index_type: str = "AUTOINDEX"
    metric_type: str = "L2"
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class LoadCollection:
    collection: str


@dataclass(frozen=True)
class CreateSimpleCollection:
    collection: str
    dimension: int
    primary_field: str = "id"
    vector_field: str = "vector"
    metric_type: str = "L2"
    auto_id: bool = False
    description: str = ""


Statement = CreateCollection | CreateIndex | LoadCollection | CreateSimpleCollection


def parse_statement(where: str, text: str, collection: str) -> Statement:
    """The statement ``text`` (JSON); ``collection``: the asset's collection-name, the default.
    ``where`` names the statement in errors."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise DataSourceError(f"{where}: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise DataSourceError(f"{where}: must be a JSON object with a command")
    read = _Reader(where, data)
    command = read.text("command")
    name = read.text("collection-name") or collection
    if command == "create-collection":
        fields = data.get("field-types")
        if not isinstance(fields, list) or not fields:
            raise DataSourceError(f"{where}: field-types must be a non-empty list of fields")
        return CreateCollection(
            collection=name,
            fields=tuple(_field(f"{where}: field-types[{i}]", f) for i, f in enumerate(fields)),
            description=read.text("description"),
            shards=read.whole("shards-num"),
            dynamic_fields=read.flag("enable-dynamic-field"),
        )
    if command == "create-index":
        extra = read.text("extra-param")
        params: Mapping[str, Any] | None = None
        if extra:
            try:
                params = json.loads(extra)
            except ValueError:
                params = None
            if not isinstance(params, dict):
                raise DataSourceError(f"{where}: extra-param must be a JSON object (as text)")
        field_name = read.text("field-name")
        if not field_name:
            raise DataSourceError(f"{where}: create-index needs a field-name")
        return CreateIndex(
            collection=name,
            field_name=field_name,
            index_name=read.text("index-name"),
            index_type=read.text("index-type") or "AUTOINDEX",
            metric_type=read.text("metric-type") or "L2",
            params=params,
        )
    if command == "load-collection":
        return LoadCollection(collection=collection or name)
    if command == "create-simple-collection":
        dimension = read.whole("dimension")
        if dimension is None or dimension < 1:
            raise DataSourceError(f"{where}: create-simple-collection needs a dimension")
        return CreateSimpleCollection(
            collection=name,
            dimension=dimension,
            primary_field=read.text("primary-field") or "id",
            vector_field=read.text("vector-field") or "vector",
            metric_type=read.text("metric-type") or "L2",
            auto_id=read.flag("auto-id"),
            description=read.text("description"),
        )
    raise DataSourceError(
        f"{where}: command must be create-collection, create-index, load-collection or "
        f"create-simple-collection, got {command!r}"
    )


def _field(where: str, data: Any) -> FieldSpec:
    if not isinstance(data, dict):
        raise DataSourceError(f"{where}: must be a mapping with name and data-type")
    read = _Reader(where, data)
    name = read.text("name")
    if not name:
        raise DataSourceError(f"{where}: name is required")
    element = read.text("element-type")
    return FieldSpec(
        name=name,
        data_type=data_type(where, read.text("data-type")),
        primary_key=read.flag("primary-key"),
        auto_id=read.flag("auto-id"),
        partition_key=read.flag("partition-key"),
        max_length=read.whole("max-length"),
        dimension=read.whole("dimension"),
        element_type=data_type(where, element) if element else None,
        max_capacity=read.whole("max-capacity"),
        description=read.text("description"),
    )


def data_type(where: str, text: str) -> str:
    """The pymilvus name of Milvus's type ``text`` (``FloatVector``, ``varchar``...)."""
    found = _BY_LOOSE_NAME.get(text.upper().replace("_", ""))
    if found is None:
        raise DataSourceError(
            f"{where}: data-type {text!r} is not a Milvus type (Int64, VarChar, FloatVector, "
            "Bool, Float, Double, JSON, Array...)"
        )
    return found


class _Reader:
    """Typed reads of a statement's keys; errors name the key."""

    def __init__(self, where: str, data: Mapping[str, Any]) -> None:
        self.where = where
        self.data = data

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if value is None:
            return ""
        if isinstance(value, dict | list):
            raise DataSourceError(f"{self.where}: {key} must be text")
        return str(value).strip()

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise DataSourceError(f"{self.where}: {key} must be true or false")
        return value

    def whole(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        try:
            number = int(str(value))
        except ValueError:
            raise DataSourceError(f"{self.where}: {key} must be a whole number") from None
        return number
