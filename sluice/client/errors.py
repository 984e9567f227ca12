"""The one error of the gateway client."""

from __future__ import annotations

from sluice.errors import SluiceError

__all__ = ["GatewayClientError"]


class GatewayClientError(SluiceError, RuntimeError):
    """A call to the gateway failed; ``status`` is the HTTP status when the gateway answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
