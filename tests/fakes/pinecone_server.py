"""A fake of one Pinecone index's data plane REST API: a real HTTP server on loopback.

Clients reach it as they reach an index host (the ``endpoint`` of a Sluice ``pinecone``
resource). It keeps vectors per namespace in memory and answers, with Pinecone's shapes:
``POST /vectors/upsert`` (``{"vectors": [{"id", "values", "metadata"}], "namespace"}`` ->
``{"upsertedCount": n}``), ``POST /vectors/delete`` (``ids``), ``POST /query`` (``vector``,
``topK``, ``filter`` with ``$eq $ne $in $nin $gt $gte $lt $lte $and $or``, ``includeMetadata``,
``includeValues``, ``namespace`` -> ``{"matches": [{"id", "score", "values", "metadata"}],
"namespace"}``, by cosine similarity) and ``POST /describe_index_stats``. A request whose
``Api-Key`` header is not :attr:`FakePinecone.api_key` gets Pinecone's 401.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.json_server import JsonServer, Request, cosine


class FakePinecone(JsonServer):
    name = "pinecone"

    def __init__(self, api_key: str = "pc-fake-key", dimension: int = 3) -> None:
        super().__init__()
        self.api_key = api_key
        self.dimension = dimension
        self.namespaces: dict[str, dict[str, dict[str, Any]]] = {}

    def allowed(self, headers: dict[str, str]) -> bool:
        return headers.get("api-key") == self.api_key

    def refused(self) -> Any:
        return {"code": 16, "message": "Invalid API Key", "details": []}

    def vectors(self, namespace: str = "") -> dict[str, dict[str, Any]]:
        return self.namespaces.setdefault(namespace, {})

    def answer(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        namespace = str(body.get("namespace") or "")
        if request.method != "POST":
            return 405, {"code": 12, "message": "method not allowed"}
        if request.path == "/describe_index_stats":
            counts = {name: {"vectorCount": len(v)} for name, v in self.namespaces.items()}
            total = sum(len(v) for v in self.namespaces.values())
            return 200, {
                "namespaces": counts,
                "dimension": self.dimension,
                "totalVectorCount": total,
            }
        if request.path == "/vectors/upsert":
            for vector in body.get("vectors") or ():
                if len(vector.get("values") or ()) != self.dimension:
                    return 400, {
                        "code": 3,
                        "message": f"Vector dimension {len(vector.get('values') or ())} does "
                        f"not match the dimension of the index {self.dimension}",
                    }
                self.vectors(namespace)[str(vector["id"])] = {
                    "id": str(vector["id"]),
                    "values": [float(v) for v in vector["values"]],
                    "metadata": dict(vector.get("metadata") or {}),
                }
            return 200, {"upsertedCount": len(body.get("vectors") or ())}
        if request.path == "/vectors/delete":
            for ident in body.get("ids") or ():
                self.vectors(namespace).pop(str(ident), None)
            return 200, {}
        if request.path == "/query":
            return 200, self._query(body, namespace)
        return 404, {"code": 5, "message": f"not found: {request.path}"}

    def _query(self, body: dict[str, Any], namespace: str) -> dict[str, Any]:
        vector = [float(v) for v in body.get("vector") or ()]
        found = [
            (cosine(vector, item["values"]), item)
            for item in self.vectors(namespace).values()
            if matches(item["metadata"], body.get("filter") or {})
        ]
        found.sort(key=lambda pair: -pair[0])
        out = []
        for score, item in found[: int(body.get("topK") or 0)]:
            match: dict[str, Any] = {"id": item["id"], "score": score, "values": []}
            if body.get("includeValues"):
                match["values"] = item["values"]
            if body.get("includeMetadata"):
                match["metadata"] = item["metadata"]
            out.append(match)
        return {"matches": out, "namespace": namespace}


def matches(metadata: dict[str, Any], condition: dict[str, Any]) -> bool:
    """Whether ``metadata`` fits Pinecone's metadata filter ``condition``."""
    for key, test in condition.items():
        if key == "$and":
            if not all(matches(metadata, part) for part in test):
                return False
        elif key == "$or":
            if not any(matches(metadata, part) for part in test):
                return False
        elif not _fits(metadata.get(key), test if isinstance(test, dict) else {"$eq": test}):
            return False
    return True


def _fits(value: Any, test: dict[str, Any]) -> bool:
    for operator, operand in test.items():
        if operator == "$eq":
            ok = value == operand
        elif operator == "$ne":
            ok = value != operand
        elif operator == "$in":
            ok = value in operand
        elif operator == "$nin":
            ok = value not in operand
        elif value is None:
            ok = False
        elif operator == "$gt":
            ok = value > operand
        elif operator == "$gte":
            ok = value >= operand
        elif operator == "$lt":
            ok = value < operand
        elif operator == "$lte":
            ok = value <= operand
        else:
            raise ValueError(f"unknown filter operator {operator}")
        if not ok:
            return False
    return True
