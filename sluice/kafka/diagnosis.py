"""Why a Kafka client cannot start: one connection per bootstrap server, with the client's own
security settings, tells a refused password, an untrusted certificate or a TLS / plaintext
mismatch apart, where aiokafka only says "Unable to bootstrap".

:func:`startup_error` is what the producer, the consumer and the admin client raise when they
cannot start: a :class:`~sluice.errors.KafkaError` naming the cause, not retriable when the
cause is certainly a setting (retrying the same password never helps), so a gateway or worker
stops with it at once instead of waiting; a hint that may also be a broker shutting down (a
closed connection) keeps the error retriable.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from typing import Any, Final

import aiokafka.errors
from aiokafka.conn import create_conn

from sluice.errors import KafkaError
from sluice.kafka.errors import kafka_error

__all__ = ["diagnose", "startup_error"]

_PROBE_TIMEOUT: Final = 10.0
_CONNECTION_KEYS: Final = (
    "security_protocol",
    "ssl_context",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_kerberos_service_name",
    "sasl_oauth_token_provider",
)


async def startup_error(error: Exception, kwargs: Mapping[str, Any], what: str) -> KafkaError:
    """``error`` (raised while an aiokafka client started with ``kwargs``) as a
    :class:`KafkaError`; a failed bootstrap is probed for its cause."""
    if isinstance(error, aiokafka.errors.KafkaConnectionError):
        found: tuple[str, bool] | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_PROBE_TIMEOUT):
                found = await _diagnose(kwargs)
        if found is not None:
            cause, certain = found
            return KafkaError(f"{what}: {cause}", retriable=not certain)
    return kafka_error(error, what)


async def diagnose(kwargs: Mapping[str, Any]) -> str | None:
    """The reason a client with these aiokafka ``kwargs`` cannot talk to its cluster when it is
    a setting (credentials, trust, protocol); None when a broker answers or none listens."""
    found = await _diagnose(kwargs)
    return None if found is None else found[0]


async def _diagnose(kwargs: Mapping[str, Any]) -> tuple[str, bool] | None:
    """The reason, and whether it is certain: a refused password, an untrusted certificate and
    a TLS answer to a plaintext client are; a closed connection or a failed handshake may also
    be a broker shutting down, so those stay retriable."""
    settings = {k: kwargs[k] for k in _CONNECTION_KEYS if k in kwargs}
    protocol = str(settings.get("security_protocol", "PLAINTEXT"))
    for server in str(kwargs["bootstrap_servers"]).split(","):
        host, _, port = server.strip().rpartition(":")
        if not port.isdigit():
            continue
        found = await _probe(host, int(port), protocol, settings)
        if found is not None:
            return found
    return None


async def _probe(
    host: str, port: int, protocol: str, settings: Mapping[str, Any]
) -> tuple[str, bool] | None:
    server = f"{host}:{port}"
    try:
        connection = await asyncio.wait_for(
            create_conn(host, port, request_timeout_ms=int(_PROBE_TIMEOUT * 1000), **settings),
            _PROBE_TIMEOUT,
        )
    except aiokafka.errors.SaslAuthenticationFailed as error:
        user = settings.get("sasl_plain_username")
        who = f" for user {user!r}" if user else ""
        return (
            f"{server} refused the SASL credentials{who} "
            f"({settings.get('sasl_mechanism')}): {error}; check sasl.jaas.config",
            True,
        )
    except ssl.SSLCertVerificationError as error:
        return (
            f"the TLS certificate of {server} is not trusted: {error.verify_message}; check "
            "ssl.truststore.* (or ssl.endpoint.identification.algorithm for a host name that "
            "the certificate does not name)",
            True,
        )
    except ssl.SSLError as error:
        return (
            f"the TLS handshake with {server} failed ({error.reason or error}): is that "
            f"listener TLS? security.protocol is {protocol}",
            False,
        )
    except aiokafka.errors.KafkaConnectionError as error:
        cause = error.__cause__
        if isinstance(cause, ssl.SSLError):
            # TLS 1.3: the broker judges the client's certificate after the handshake, so its
            # alert (bad or missing certificate) comes with the first answer.
            reason = str(cause.reason or cause)
            return (
                f"{server} refused the TLS session ({reason}): does it want a client "
                "certificate it trusts? check ssl.keystore.*",
                "CERTIFICATE" in reason.upper(),
            )
        if "SSL" not in protocol and await _speaks_tls(host, port):
            return (
                f"{server} speaks TLS but security.protocol is {protocol}: use SSL or SASL_SSL "
                "with the cluster's trust store",
                True,
            )
        if not protocol.startswith("SASL") and isinstance(
            error.__cause__, asyncio.IncompleteReadError
        ):
            return (
                f"{server} closed the connection: does its listener want SASL "
                f"(security.protocol SASL_SSL or SASL_PLAINTEXT)? security.protocol is {protocol}",
                False,
            )
        return None
    except aiokafka.errors.KafkaError as error:
        reason = f"{server} answered {type(error).__name__}: {error}; check security.protocol"
        return reason, not error.retriable
    except KafkaError as error:  # the OAuth token endpoint's refusal
        return str(error), not error.retriable
    except (OSError, TimeoutError):
        return None  # nothing listens there, or not in time: not a setting
    connection.close()
    return None


async def _speaks_tls(host: str, port: int) -> bool:
    """Whether a TLS handshake (certificates unchecked) succeeds at ``host:port``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), _PROBE_TIMEOUT
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return True
