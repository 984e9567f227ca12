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

``POST /_bulk`` and ``POST /<index>/_bulk`` take NDJSON as OpenSearch documents it
(``Content-Type: application/x-ndjson``, the body ending with a newline, else 400): an action
line ``{"index"|"create"|"delete": {"_index", "_id"}}`` (``_index`` defaults to the path's),
followed by the document for ``index`` and ``create``. The answer has ``took``, ``errors`` and
one item per action, in order, each ``{action: {_index, _id, status, result}}`` or with an
``error`` ``{type, reason}``: a field mapped as ``knn_vector`` whose value is not a list of
``dimension`` numbers gives ``mapper_parsing_exception`` (400), ``create`` of an existing id
``version_conflict_engine_exception`` (409); a delete of a missing document is ``not_found``
(404, no error). :attr:`FakeOpenSearch.bulk_sizes` lists the actions of each bulk request.

Made with ``aws_keys`` (access key -> secret key), it plays OpenSearch on AWS instead: every
request must carry an AWS Signature Version 4 for ``region`` and ``aws_service`` (``aoss``
Serverless, ``es`` a managed domain) made with one of those keys, which the fake recomputes
(tests/fakes/bedrock_server.py's ``verify_sigv4``), else 403 with AWS's message.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from typing import Any
from urllib.parse import urlencode

from tests.fakes.bedrock_server import verify_sigv4
from tests.fakes.json_server import JsonServer, Request


class FakeOpenSearch(JsonServer):
    name = "opensearch"

    def __init__(
        self,
        username: str = "admin",
        password: str = "os-fake-password",
        *,
        aws_keys: dict[str, str] | None = None,
        region: str = "us-east-1",
        aws_service: str = "aoss",
    ) -> None:
        super().__init__()
        self.aws_keys = aws_keys
        self.region = region
        self.aws_service = aws_service
        self.credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.indexes: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self.bulk_sizes: list[int] = []

    def allowed(self, headers: dict[str, str]) -> bool:
        if self.aws_keys is not None:
            return True  # the signature is checked with the whole request, in answer
        return headers.get("authorization") == f"Basic {self.credentials}"

    def refused(self) -> Any:
        return {"error": {"type": "security_exception", "reason": "Unauthorized"}, "status": 401}

    def documents(self, index: str) -> dict[str, Any]:
        return {k: v for k, v in self.indexes.get(index, {}).get("docs", {}).items()}

    def signature_problem(self, request: Request) -> str | None:
        """Why the request's AWS signature is refused, or None."""
        assert self.aws_keys is not None
        found = re.search(r"Credential=([^/]+)/", request.headers.get("authorization", ""))
        secret = self.aws_keys.get(found.group(1)) if found else None
        if secret is None:
            return "The security token included in the request is invalid."
        raw_path = request.path + ("?" + urlencode(request.query) if request.query else "")
        problem = verify_sigv4(
            request.method,
            raw_path,
            request.headers,
            request.raw,
            secret,
            self.region,
            self.aws_service,
        )
        if problem is None:
            return None
        return (
            "The request signature we calculated does not match the signature you provided "
            f"({problem})"
        )

    def answer(self, request: Request) -> tuple[int, Any]:
        if self.aws_keys is not None:
            problem = self.signature_problem(request)
            if problem is not None:
                return 403, {"message": problem}
        parts = [p for p in request.path.split("/") if p]
        body = request.body if isinstance(request.body, dict) else {}
        if not parts:
            return 200, {
                "name": "fake",
                "version": {"distribution": "opensearch", "number": "2.11.0"},
            }
        if parts[-1] == "_bulk" and len(parts) <= 2:
            return self._bulk(request, parts[0] if len(parts) == 2 else None)
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

    def _bulk(self, request: Request, default_index: str | None) -> tuple[int, Any]:
        kind = request.headers.get("content-type", "")
        text = request.raw.decode("utf-8")
        if "ndjson" not in kind and "json" not in kind:
            return 406, _error("illegal_argument_exception", f"Content-Type {kind!r}")
        if not text.endswith("\n"):
            reason = "The bulk request must be terminated by a newline [\\n]"
            return 400, _error("illegal_argument_exception", reason)
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        items: list[dict[str, Any]] = []
        position = 0
        while position < len(lines):
            [(action, target)] = lines[position].items()
            position += 1
            document = None
            if action in ("index", "create"):
                document = lines[position]
                position += 1
            elif action != "delete":
                return 400, _error("illegal_argument_exception", f"Malformed action {action}")
            index = target.get("_index") or default_index
            if not index:
                return 400, _error("action_request_validation_exception", "index is missing")
            items.append({action: self._bulk_item(action, index, target.get("_id"), document)})
        self.bulk_sizes.append(len(items))
        failed = any("error" in next(iter(item.values())) for item in items)
        return 200, {"took": 1, "errors": failed, "items": items}

    def _bulk_item(
        self, action: str, index: str, ident: str | None, document: Any
    ) -> dict[str, Any]:
        docs = self.indexes.setdefault(index, {"settings": {}, "mappings": {}, "docs": {}})["docs"]
        if action == "delete":
            found = docs.pop(ident, None) is not None
            result = "deleted" if found else "not_found"
            return {
                "_index": index,
                "_id": ident,
                "status": 200 if found else 404,
                "result": result,
            }
        ident = ident or f"auto-{next(self._ids)}"
        problem = self._invalid(index, document)
        if problem is not None:
            return {"_index": index, "_id": ident, "status": 400, "error": problem}
        if action == "create" and ident in docs:
            reason = f"[{ident}]: version conflict, document already exists"
            error = {"type": "version_conflict_engine_exception", "reason": reason}
            return {"_index": index, "_id": ident, "status": 409, "error": error}
        result = "updated" if ident in docs else "created"
        docs[ident] = document
        status = 200 if result == "updated" else 201
        return {"_index": index, "_id": ident, "status": status, "result": result}

    def _invalid(self, index: str, document: Any) -> dict[str, str] | None:
        """The mapper_parsing_exception of a document that does not fit the index's knn_vector
        fields, or None."""
        if not isinstance(document, dict):
            return {"type": "mapper_parsing_exception", "reason": "failed to parse"}
        properties = self.indexes[index]["mappings"].get("properties") or {}
        for name, mapping in properties.items():
            if mapping.get("type") != "knn_vector" or name not in document:
                continue
            value = document[name]
            dimension = int(mapping.get("dimension", 0))
            if not isinstance(value, list) or len(value) != dimension:
                size = len(value) if isinstance(value, list) else "no"
                reason = (
                    f"failed to parse field [{name}] of type [knn_vector]: Vector dimension "
                    f"mismatch. Expected: {dimension}, Given: {size}"
                )
                return {"type": "mapper_parsing_exception", "reason": reason}
        return None

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


def _error(kind: str, reason: str) -> dict[str, Any]:
    return {"error": {"type": kind, "reason": reason}, "status": 400}


def _missing(index: str) -> tuple[int, Any]:
    return 404, {
        "error": {
            "type": "index_not_found_exception",
            "reason": f"no such index [{index}]",
            "index": index,
        },
        "status": 404,
    }
