"""A python-service that answers with what it was sent: path, query and headers."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sluice.sdk import Service


class WhoAmI(Service):
    def app(self):
        async def who(request: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "path": request.url.path,
                    "query": request.url.query,
                    "headers": dict(request.headers),
                    "body": (await request.body()).decode(),
                }
            )

        return Starlette(routes=[Route("/{path:path}", who, methods=["GET", "POST"])])
