"""Kafka connection settings: bootstrap servers and Kafka client properties.

:class:`KafkaSettings` takes client properties under their Java names and turns them into
aiokafka keyword arguments per client role (producer, consumer, admin): the property table is
:mod:`sluice.application.kafka_properties` (``sluice validate`` checks ``instance.yaml`` with it),
the SSL context :mod:`sluice.kafka.tls`. Unknown options, and the ones Sluice fixes itself, are
rejected when the settings are made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sluice.application.kafka_properties import Role, aiokafka_kwargs
from sluice.errors import KafkaError
from sluice.kafka.tls import ssl_context

if TYPE_CHECKING:
    from sluice.kafka.oauth import ClientCredentialsTokens

__all__ = ["KafkaSettings", "Role"]


@dataclass(frozen=True)
class KafkaSettings:
    """Where Kafka is and how to connect to it.

    ``client_options`` are Kafka client properties under their Java names, as in LangStream's
    ``streamingCluster.configuration.admin``: ``security.protocol``, ``sasl.mechanism``,
    ``sasl.jaas.config`` (PLAIN, SCRAM or OAuthBearer login module; OAUTHBEARER with
    ``sasl.oauthbearer.token.endpoint.url``), PEM, PKCS12 or JKS ``ssl.truststore.*`` /
    ``ssl.keystore.*``, ``ssl.key.password``, ``ssl.endpoint.identification.algorithm``,
    ``client.id``, timeouts, and producer / consumer tuning (``linger.ms``,
    ``compression.type``, ``max.partition.fetch.bytes``, ``session.timeout.ms``...). Serializer
    settings are ignored; anything else, and settings Sluice fixes itself (``acks``,
    ``enable.idempotence``, ``enable.auto.commit``...), raise :class:`~sluice.errors.KafkaError`
    naming the option when the settings are made.
    """

    bootstrap_servers: str
    client_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise KafkaError("Kafka bootstrap servers are empty")
        object.__setattr__(self, "client_options", MappingProxyType(dict(self.client_options)))
        kwargs = aiokafka_kwargs(self.client_options)["admin"]
        # One token provider for every client of these settings: one token, fetched once.
        tokens = None
        if "oauth_token_endpoint" in kwargs:
            # Imported here: its HTTP client (httpx) is not in a worker's environment.
            from sluice.kafka.oauth import ClientCredentialsTokens

            tokens = ClientCredentialsTokens(
                kwargs["oauth_token_endpoint"],
                kwargs.get("oauth_client_id", ""),
                kwargs.get("oauth_client_secret", ""),
                kwargs.get("oauth_scope"),
            )
        object.__setattr__(self, "_tokens", tokens)

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> KafkaSettings:
        """Settings from Kafka client properties that include ``bootstrap.servers``."""
        if "bootstrap.servers" not in properties:
            raise KafkaError("Kafka client properties without bootstrap.servers")
        options = {k: v for k, v in properties.items() if k != "bootstrap.servers"}
        return cls(str(properties["bootstrap.servers"]), options)

    def client_kwargs(self, role: Role) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client of ``role`` (bootstrap servers included)."""
        kwargs = aiokafka_kwargs(self.client_options)[role]
        kwargs["bootstrap_servers"] = self.bootstrap_servers
        for key in ("oauth_token_endpoint", "oauth_client_id", "oauth_client_secret"):
            kwargs.pop(key, None)
        kwargs.pop("oauth_scope", None)
        tokens: ClientCredentialsTokens | None = getattr(self, "_tokens", None)
        if tokens is not None:
            kwargs["sasl_oauth_token_provider"] = tokens
        protocol = kwargs.get("security_protocol", "PLAINTEXT")
        if protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = ssl_context(self.client_options)
        return kwargs
