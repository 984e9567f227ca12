"""``s3-source``: the objects of a bucket of an S3-compatible store as records
(:mod:`workers.builtin.object_sources` says how), the bucket opened with the MinIO client."""

from __future__ import annotations

from typing import Any

from workers.builtin.object_sources import ObjectStorageSource, ObjectStore
from workers.builtin.objectstore import open_bucket


class S3Source(ObjectStorageSource):
    agent_type = "s3-source"

    def open_store(self, checked: dict[str, Any]) -> ObjectStore:
        return open_bucket(checked, needed_by="s3-source")
