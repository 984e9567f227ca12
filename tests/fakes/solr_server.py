"""A fake of Solr's HTTP APIs for collections, JSON updates and (k-NN) search: a real HTTP server
on loopback.

It keeps collections in memory and answers, with Solr's shapes: ``GET /solr/admin/info/system``;
the collections API (``POST /api/collections`` with ``{"name"}``, ``GET`` and ``DELETE
/api/collections/<name>``; a missing collection answers 400, as Solr 9.3 does); ``POST
/solr/<c>/schema`` (``add-field``... commands, kept in :attr:`FakeSolr.schemas`); ``POST
/solr/<c>/update`` with a list of documents (added, replacing the one of the same ``id``) or
``{"delete": {"id"}}`` (``commit`` / ``commitWithin`` parameters recorded with each request);
and ``POST /solr/<c>/select`` with the JSON Request API's ``params``: ``q`` of ``*:*``,
``field:value`` or ``{!knn f=<field> topK=<n>}[vector]`` (scored ``(1 + cosine) / 2`` as
Solr's cosine similarity), ``fl`` (with ``score``) and ``rows``. Requests without the basic
credentials ``user:password`` get 401.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.fakes.json_server import JsonServer, Request, cosine

_KNN = re.compile(r"^\{!knn f=(?P<field>\w+) topK=(?P<k>\d+)\}(?P<vector>\[.*\])$", re.S)


class FakeSolr(JsonServer):
    name = "solr"

    def __init__(self, user: str = "solr", password: str = "solr-fake-password") -> None:
        super().__init__()
        self.credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.collections: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, list[Any]] = {}

    def allowed(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Basic {self.credentials}"

    def refused(self) -> Any:
        return {
            "responseHeader": {"status": 401},
            "error": {"msg": "require authentication", "code": 401},
        }

    def create(self, name: str) -> None:
        self.collections.setdefault(name, {})
        self.schemas.setdefault(name, [])

    def answer(self, request: Request) -> tuple[int, Any]:
        parts = [p for p in request.path.split("/") if p]
        if parts[:4] == ["solr", "admin", "info", "system"]:
            return 200, {"responseHeader": {"status": 0}, "lucene": {"solr-spec-version": "9.3.0"}}
        if parts[:2] == ["api", "collections"]:
            return self._collections(request, parts[2] if len(parts) > 2 else None)
        if len(parts) == 3 and parts[0] == "solr":
            name, action = parts[1], parts[2]
            if name not in self.collections:
                return 404, _error(404, f"Could not find collection : {name}")
            if action == "select":
                return 200, self._select(name, request.body)
            if action == "update":
                return self._update(name, request.body)
            if action == "schema":
                self.schemas[name].append(request.body)
                return 200, {"responseHeader": {"status": 0}}
        return 404, _error(404, f"no handler for {request.path}")

    def _collections(self, request: Request, name: str | None) -> tuple[int, Any]:
        if request.method == "POST" and name is None:
            body = request.body if isinstance(request.body, dict) else {}
            created = str(body.get("name") or "")
            if not created:
                return 400, _error(400, "name is required")
            if created in self.collections:
                return 400, _error(400, f"collection already exists: {created}")
            self.create(created)
            return 200, {"responseHeader": {"status": 0}}
        if name is None or name not in self.collections:
            return 400, _error(400, f"Collection '{name}' does not exist")
        if request.method == "DELETE":
            del self.collections[name]
            self.schemas.pop(name, None)
            return 200, {"responseHeader": {"status": 0}}
        return 200, {"responseHeader": {"status": 0}, "cluster": {"collections": {name: {}}}}

    def _update(self, name: str, body: Any) -> tuple[int, Any]:
        docs = self.collections[name]
        if isinstance(body, list):
            for doc in body:
                if "id" not in doc or doc["id"] is None:
                    return 400, _error(400, "Document is missing mandatory uniqueKey field: id")
                docs[str(doc["id"])] = {k: v for k, v in doc.items() if v is not None}
        elif isinstance(body, dict) and "delete" in body:
            docs.pop(str(body["delete"].get("id")), None)
        else:
            return 400, _error(400, "unknown update")
        return 200, {"responseHeader": {"status": 0, "QTime": 1}}

    def _select(self, name: str, body: Any) -> dict[str, Any]:
        params = (body or {}).get("params", {}) if isinstance(body, dict) else {}
        q = str(params.get("q", "*:*"))
        rows = int(params.get("rows", 10))
        docs = self.collections[name]
        scored: list[tuple[float, dict[str, Any]]]
        knn = _KNN.match(q)
        if knn:
            vector = [float(v) for v in json.loads(knn["vector"])]
            field = knn["field"]
            scored = [
                ((1 + cosine(vector, [float(v) for v in doc[field]])) / 2, doc)
                for doc in docs.values()
                if isinstance(doc.get(field), list)
            ]
            scored.sort(key=lambda pair: -pair[0])
            scored = scored[: int(knn["k"])]
        elif q == "*:*":
            scored = [(1.0, doc) for doc in docs.values()]
        else:
            field, _, value = q.partition(":")
            scored = [(1.0, d) for d in docs.values() if str(d.get(field)) == value.strip('"')]
        fields = [f.strip() for f in str(params.get("fl", "*")).split(",") if f.strip()]
        out = []
        for score, doc in scored[:rows]:
            shown = {k: v for k, v in doc.items() if "*" in fields or k in fields}
            if "score" in fields:
                shown["score"] = score
            out.append(shown)
        return {
            "responseHeader": {"status": 0, "params": params},
            "response": {"numFound": len(scored), "start": 0, "numFoundExact": True, "docs": out},
        }


def _error(code: int, message: str) -> dict[str, Any]:
    return {"responseHeader": {"status": code}, "error": {"msg": message, "code": code}}
