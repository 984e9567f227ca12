"""A fake of OpenSearch's REST API for indexes, documents and k-NN search: a real HTTP server on
loopback.

It keeps indexes in memory and answers, with OpenSearch's shapes: ``GET /`` (cluster info),
``HEAD``/``PUT``/``DELETE /<index>`` (exists, create with ``settings`` and ``mappings``,
delete; ``index_not_found_exception`` / ``resource_already_exists_exception`` as OpenSearch
gives them), ``PUT /<index>/_doc/<id>`` and ``POST /<index>/_doc`` (index; ``result`` created
or updated), ``DELETE /<index>/_doc/<id>`` (404 ``not_found`` when absent) and
``POST /<index>/_search`` with ``size`` and a ``query`` of ``knn`` (``{field: {vector, k}}``,
scored ``1 / (1 + l2²)`` as the l2 space does), ``match_all`` or ``term``. Indexing into a
missing index creates it, as OpenSearch does. Requests without the basic credentials
``username:password`` get 401.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from tests.fakes.json_server import JsonServer, Request


class FakeOpenSearch(JsonServer):
    name = "opensearch"

    def __init__(self, username: str = "admin", password: str = "os-fake-password") -> None:
        super().__init__()
        self.credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.indexes: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def allowed(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Basic {self.credentials}"

    def refused(self) -> Any:
        return {"error": {"type": "security_exception", "reason": "Unauthorized"}, "status": 401}

    def documents(self, index: str) -> dict[str, Any]:
        return {k: v for k, v in self.indexes.get(index, {}).get("docs", {}).items()}

    def answer(self, request: Request) -> tuple[int, Any]:
        parts = [p for p in request.path.split("/") if p]
        body = request.body if isinstance(request.body, dict) else {}
        if not parts:
            return 200, {
                "name": "fake",
                "version": {"distribution": "opensearch", "number": "2.11.0"},
            }
        index = parts[0]
        if len(parts) == 1:
            return self._index(request.method, index, body)
        if parts[1] == "_search" and request.method in ("POST", "GET"):
            if index not in self.indexes:
                return _missing(index)
            return 200, self._search(index, body)
        if parts[1] == "_doc":
            return self._doc(request.method, index, parts[2] if len(parts) > 2 else None, body)
        return 400, {"error": {"type": "illegal_argument_exception", "reason": request.path}}

    def _index(self, method: str, index: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method in ("HEAD", "GET"):
            if index not in self.indexes:
                return _missing(index)
            found = self.indexes[index]
            return 200, {index: {"settings": found["settings"], "mappings": found["mappings"]}}
        if method == "PUT":
            if index in self.indexes:
                return 400, {
                    "error": {
                        "type": "resource_already_exists_exception",
                        "reason": f"index [{index}] already exists",
                    },
                    "status": 400,
                }
            self.indexes[index] = {
                "settings": body.get("settings") or {},
                "mappings": body.get("mappings") or {},
                "docs": {},
            }
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": index}
        if method == "DELETE":
            if self.indexes.pop(index, None) is None:
                return _missing(index)
            return 200, {"acknowledged": True}
        return 405, {"error": "method not allowed"}

    def _doc(
        self, method: str, index: str, ident: str | None, body: dict[str, Any]
    ) -> tuple[int, Any]:
        docs = self.indexes.setdefault(index, {"settings": {}, "mappings": {}, "docs": {}})["docs"]
        if method == "DELETE" and ident is not None:
            found = docs.pop(ident, None) is not None
            result = "deleted" if found else "not_found"
            return (200 if found else 404), {"_index": index, "_id": ident, "result": result}
        if method in ("PUT", "POST"):
            ident = ident or f"auto-{next(self._ids)}"
            result = "updated" if ident in docs else "created"
            docs[ident] = body
            return (200 if result == "updated" else 201), {
                "_index": index,
                "_id": ident,
                "result": result,
            }
        return 405, {"error": "method not allowed"}

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        docs = self.indexes[index]["docs"]
        query = body.get("query") or {"match_all": {}}
        scored: list[tuple[float, str, Any]] = []
        if "knn" in query:
            [(field, spec)] = query["knn"].items()
            vector = [float(v) for v in spec["vector"]]
            for ident, doc in docs.items():
                if isinstance(doc.get(field), list):
                    distance = sum(
                        (a - float(b)) ** 2 for a, b in zip(vector, doc[field], strict=False)
                    )
                    scored.append((1 / (1 + distance), ident, doc))
            scored.sort(key=lambda item: -item[0])
            scored = scored[: int(spec.get("k", 10))]
        elif "term" in query:
            [(field, value)] = query["term"].items()
            wanted = value.get("value") if isinstance(value, dict) else value
            scored = [(1.0, i, d) for i, d in docs.items() if d.get(field) == wanted]
        else:
            scored = [(1.0, i, d) for i, d in docs.items()]
        size = int(body.get("size", 10))
        hits = [
            {"_index": index, "_id": ident, "_score": score, "_source": doc}
            for score, ident, doc in scored[:size]
        ]
        return {
            "took": 1,
            "timed_out": False,
            "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits},
        }


def _missing(index: str) -> tuple[int, Any]:
    return 404, {
        "error": {
            "type": "index_not_found_exception",
            "reason": f"no such index [{index}]",
            "index": index,
        },
        "status": 404,
    }
