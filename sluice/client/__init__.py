"""A client of Sluice's gateway, for programs and for ``sluice gateway``.

:class:`Target` (which gateway, with which parameters, options and credentials), the message
helpers and :func:`chat_frame` are pure (:mod:`sluice.client.target`,
:mod:`sluice.client.messages`). :func:`post` (HTTP) and :func:`open_socket` (WebSocket), with
:func:`produce_frame` and :func:`converse` on top (:mod:`sluice.client.transport`), talk to the
gateway and raise :class:`GatewayClientError` with a message fit for a command line.
"""

from sluice.client.errors import GatewayClientError
from sluice.client.messages import ChatFrame, chat_frame, parse_pair, parse_value, produce_request
from sluice.client.target import DEFAULT_TENANT, DEFAULT_URL, Credentials, Target, base_url
from sluice.client.transport import close_problem, converse, open_socket, post, produce_frame

__all__ = [
    "DEFAULT_TENANT",
    "DEFAULT_URL",
    "ChatFrame",
    "Credentials",
    "GatewayClientError",
    "Target",
    "base_url",
    "chat_frame",
    "close_problem",
    "converse",
    "open_socket",
    "parse_pair",
    "parse_value",
    "post",
    "produce_frame",
    "produce_request",
]
