"""Application files the Cassandra and Astra tests share."""

from __future__ import annotations

__all__ = ["ASTRADB_SINK"]

ASTRADB_SINK = """
name: "Write to Astra DB"
topics:
  - name: "{topic}"
    creation-mode: create-if-not-exists
assets:
  - name: "lagstream-keyspace"
    asset-type: "astra-keyspace"
    creation-mode: create-if-not-exists
    config:
      keyspace: "{keyspace}"
      datasource: "AstraDatasource"
  - name: "products-table"
    asset-type: "cassandra-table"
    creation-mode: create-if-not-exists
    config:
      table-name: "products"
      keyspace: "{keyspace}"
      datasource: "AstraDatasource"
      create-statements:
        - "CREATE TABLE IF NOT EXISTS {keyspace}.products (id int PRIMARY KEY,name TEXT,description TEXT);"
pipeline:
  - name: "Write to Astra"
    type: "vector-db-sink"
    input: "{topic}"
    configuration:
      datasource: "AstraDatasource"
      table-name: "products"
      keyspace: "{keyspace}"
      mapping: "id=value.id,description=value.description,name=value.name"
"""
"""The pipeline of LangStream's ``astradb-sink`` example, in its shape (keyspace asset, table
asset, vector-db-sink with a mapping), with the topic and keyspace to fill in."""
