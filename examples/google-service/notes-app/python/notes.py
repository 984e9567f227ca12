"""A notes service: each signed-in user reads and writes only their own notes.

It never sees a token: the gateway checked it and passes who the user is in the
``langstream-client-user-id`` header (the token's subject), and the session in
``langstream-client-session-id``. A client cannot set those headers itself. Notes are kept in
memory, so they are gone when the service restarts.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from quart import Quart, Response, jsonify, request

from sluice import Service

USER = "langstream-client-user-id"
SESSION = "langstream-client-session-id"


def make_app() -> Quart:
    app = Quart("notes")
    notes: dict[str, list[str]] = defaultdict(list)

    def user() -> str | None:
        return request.headers.get(USER)

    @app.get("/me")
    async def me() -> Any:
        return jsonify({"user": user(), "session": request.headers.get(SESSION)})

    @app.get("/notes")
    async def list_notes() -> Any:
        who = user()
        if who is None:
            return Response("no user: call me through the gateway", status=401)
        return jsonify({"user": who, "notes": notes[who]})

    @app.post("/notes")
    async def add_note() -> Any:
        who = user()
        if who is None:
            return Response("no user: call me through the gateway", status=401)
        body = await request.get_json(force=True, silent=True)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return jsonify({"error": 'send {"text": "..."}'}), 400
        notes[who].append(text.strip())
        return jsonify({"user": who, "notes": notes[who]}), 201

    return app


class Notes(Service):
    def app(self) -> Quart:
        return make_app()
