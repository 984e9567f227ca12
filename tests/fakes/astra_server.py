"""A fake of Astra DB's Data API (JSON commands): a real HTTP server on loopback.

It keeps keyspaces of collections in memory and answers ``POST /api/json/v1/<keyspace>`` (the
keyspace commands ``createCollection`` with ``options.vector.dimension``, ``findCollections``,
``deleteCollection``) and ``POST /api/json/v1/<keyspace>/<collection>`` (``insertOne``,
``find`` with ``filter`` on field equality, ``sort`` by ``$vector`` scored ``(1 + cosine) / 2``
as the cosine metric, ``projection`` and ``options.limit`` / ``includeSimilarity``,
``findOneAndReplace``, ``findOneAndUpdate`` with ``$set``, ``deleteOne``, ``deleteMany``), with
the API's shapes: ``{"data": {"documents"}}``, ``{"status": {...}}``, and errors in the body
with HTTP 200 (``DOCUMENT_ALREADY_EXISTS``, ``COLLECTION_NOT_EXIST``). A request whose ``Token``
header is not :attr:`FakeAstra.token` gets 401 with ``UNAUTHENTICATED_REQUEST``.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.json_server import JsonServer, Request, cosine


class FakeAstra(JsonServer):
    name = "astra"

    def __init__(self, token: str = "AstraCS:fake-token") -> None:
        super().__init__()
        self.token = token
        self.keyspaces: dict[str, dict[str, dict[str, Any]]] = {"default_keyspace": {}}

    def allowed(self, headers: dict[str, str]) -> bool:
        return headers.get("token") == self.token

    def refused(self) -> Any:
        return {
            "errors": [
                {
                    "message": "UNAUTHENTICATED: Invalid token",
                    "errorCode": "UNAUTHENTICATED_REQUEST",
                }
            ]
        }

    def create(
        self, collection: str, dimension: int = 3, keyspace: str = "default_keyspace"
    ) -> None:
        self.keyspaces.setdefault(keyspace, {})[collection] = {"dimension": dimension, "docs": {}}

    def documents(self, collection: str, keyspace: str = "default_keyspace") -> dict[str, Any]:
        return dict(self.keyspaces[keyspace][collection]["docs"])

    def answer(self, request: Request) -> tuple[int, Any]:
        parts = [p for p in request.path.split("/") if p]
        if request.method != "POST" or parts[:3] != ["api", "json", "v1"] or len(parts) < 4:
            return 404, {"errors": [{"message": f"no route {request.path}"}]}
        if not isinstance(request.body, dict) or len(request.body) != 1:
            return 200, _error("INVALID_REQUEST", "a command is one JSON object with one name")
        [(name, body)] = request.body.items()
        keyspace = self.keyspaces.setdefault(parts[3], {})
        if len(parts) == 4:
            return 200, self._keyspace(keyspace, name, body or {})
        collection = keyspace.get(parts[4])
        if collection is None:
            return 200, _error(
                "COLLECTION_NOT_EXIST", f"Collection does not exist, collection name: {parts[4]}"
            )
        return 200, self._collection(collection, name, body or {})

    def _keyspace(self, keyspace: dict[str, Any], name: str, body: dict[str, Any]) -> Any:
        if name == "findCollections":
            return {"status": {"collections": sorted(keyspace)}}
        if name == "createCollection":
            dimension = ((body.get("options") or {}).get("vector") or {}).get("dimension")
            keyspace.setdefault(str(body["name"]), {"dimension": dimension, "docs": {}})
            return {"status": {"ok": 1}}
        if name == "deleteCollection":
            keyspace.pop(str(body["name"]), None)
            return {"status": {"ok": 1}}
        return _error("UNKNOWN_COMMAND", f"No such command: {name}")

    def _collection(self, collection: dict[str, Any], name: str, body: dict[str, Any]) -> Any:
        docs: dict[str, Any] = collection["docs"]
        if name == "insertOne":
            document = dict(body["document"])
            ident = str(document.get("_id"))
            vector = document.get("$vector")
            if (
                vector is not None
                and collection["dimension"]
                and len(vector) != collection["dimension"]
            ):
                return _error(
                    "VECTOR_SIZE_MISMATCH",
                    f"Length of vector parameter different from declared '{collection['dimension']}'",
                )
            if ident in docs:
                return {
                    "errors": [
                        {
                            "message": f"Failed to insert document with _id '{ident}': "
                            "Document already exists with the given _id",
                            "errorCode": "DOCUMENT_ALREADY_EXISTS",
                        }
                    ],
                    "status": {"insertedIds": []},
                }
            docs[ident] = document
            return {"status": {"insertedIds": [ident]}}
        found = [d for d in docs.values() if _matches(d, body.get("filter") or {})]
        if name == "find":
            return {"data": {"documents": self._find(found, body), "nextPageState": None}}
        if name == "findOneAndReplace":
            if found:
                docs[str(found[0]["_id"])] = {"_id": found[0]["_id"], **body["replacement"]}
            return {
                "data": {"document": None},
                "status": {"matchedCount": len(found[:1]), "modifiedCount": len(found[:1])},
            }
        if name == "findOneAndUpdate":
            for document in found[:1]:
                document.update((body.get("update") or {}).get("$set") or {})
            return {
                "data": {"document": None},
                "status": {"matchedCount": len(found[:1]), "modifiedCount": len(found[:1])},
            }
        if name in ("deleteOne", "deleteMany"):
            gone = found[:1] if name == "deleteOne" else found
            for document in gone:
                docs.pop(str(document["_id"]), None)
            return {"status": {"deletedCount": len(gone)}}
        return _error("UNKNOWN_COMMAND", f"No such command: {name}")

    def _find(self, found: list[dict[str, Any]], body: dict[str, Any]) -> list[dict[str, Any]]:
        options = body.get("options") or {}
        vector = (body.get("sort") or {}).get("$vector")
        scored = [(1.0, d) for d in found]
        if vector is not None:
            scored = [
                ((1 + cosine(vector, d["$vector"])) / 2, d) for d in found if d.get("$vector")
            ]
            scored.sort(key=lambda pair: -pair[0])
        projection = body.get("projection")
        out = []
        for score, document in scored[: int(options.get("limit") or 20)]:
            if projection:
                shown = {k: v for k, v in document.items() if k == "_id" or projection.get(k)}
            else:
                shown = {k: v for k, v in document.items() if k != "$vector"}
            if options.get("includeSimilarity") and vector is not None:
                shown["$similarity"] = score
            out.append(shown)
        return out


def _matches(document: dict[str, Any], condition: dict[str, Any]) -> bool:
    return all(document.get(key) == value for key, value in condition.items())


def _error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "errorCode": code}]}
