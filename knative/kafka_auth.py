"""How Knative's Kafka data plane and the pods authenticate to a secured Kafka.

Read once from ``instance.streamingCluster.configuration.admin`` (the client properties every
Kafka client of the application gets, with secrets.yaml's values already in place) by
:func:`kafka_auth`, at the edge: certificate files named by ``ssl.*.location`` are read there,
from the paths as written (relative ones from the current folder, as Sluice's Kafka clients open
them on the deployer's machine).

=====================================  ====================================================
property                               becomes
=====================================  ====================================================
``security.protocol``                  ``PLAINTEXT`` (nothing to do), ``SSL``,
                                       ``SASL_PLAINTEXT`` or ``SASL_SSL``
``sasl.mechanism``                     ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``
                                       (implied ``PLAIN`` by the PLAIN login module)
``sasl.jaas.config``                   the user and password (PLAIN or SCRAM login module)
``ssl.truststore.certificates`` /      the CA certificate(s), PEM (a file of another
``ssl.truststore.location``            ``ssl.truststore.type`` is refused); none: the
                                       system's CAs
``ssl.keystore.location`` /            the client certificate and its unencrypted PKCS#8
``ssl.keystore.certificate.chain`` +   key, PEM (mutual TLS)
``ssl.keystore.key``
=====================================  ====================================================

What Knative cannot express is an :class:`~knative.errors.InvalidSettings` naming the property:
another mechanism (GSSAPI, OAUTHBEARER), another login module, JKS or PKCS#12 stores, an
encrypted key (``ssl.key.password``), a key not in PKCS#8 (Knative's Java data plane reads only
that), and turning host name verification off (``ssl.endpoint.identification.algorithm``).
Other client properties (timeouts, batching...) concern the pods' own clients only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from sluice.application.model import InstanceSpec
from sluice.errors import Problem

__all__ = ["MECHANISMS", "PROTOCOLS", "KafkaAuth", "kafka_auth"]

PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_FILE: Final = "instance.yaml"
_PATH: Final = "instance.streamingCluster.configuration.admin"
_JAAS: Final = re.compile(
    r"^\s*([\w.$]+)\s+(?:required|requisite|sufficient|optional)\s*(.*?);?\s*$"
)
_JAAS_OPTION: Final = re.compile(r"""(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]+))""")
_PEM: Final = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s.*?-----END \1-----", re.DOTALL)

ReadText = Callable[[str], str]
"""Reads a file named by a ``ssl.*.location`` property (the deployer's file system)."""


@dataclass(frozen=True)
class KafkaAuth:
    """The security of the application's Kafka connection, as Knative takes it.

    ``ca_cert``, ``user_cert`` and ``user_key`` are PEM text. ``truststore_file`` /
    ``keystore_file``: the CA / the client certificate came from a file (``ssl.*.location``),
    which the pods then read from the Kafka Secret instead of the deployer's path.
    """

    protocol: str
    mechanism: str | None = None
    user: str | None = None
    password: str | None = None
    ca_cert: str | None = None
    user_cert: str | None = None
    user_key: str | None = None
    truststore_file: bool = False
    keystore_file: bool = False

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def client_certificate(self) -> bool:
        return self.user_cert is not None and self.user_key is not None


def _read_file(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def kafka_auth(
    instance: InstanceSpec, problems: list[Problem], read_text: ReadText = _read_file
) -> KafkaAuth | None:
    """The security settings of the instance's Kafka, or None for a plaintext connection.

    Appends to ``problems`` one entry per setting Knative cannot express, naming it.
    """
    admin = instance.kafka_admin
    start = len(problems)

    def problem(key: str, message: str) -> None:
        problems.append(Problem(_FILE, f"{_PATH}.{key}", message))

    protocol = str(admin.get("security.protocol", "PLAINTEXT")).upper()
    if protocol not in PROTOCOLS:
        problem("security.protocol", f"must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        return None
    if protocol == "PLAINTEXT":
        return None
    auth = KafkaAuth(protocol)
    if auth.sasl:
        auth = _sasl(admin, auth, problem)
    if auth.tls:
        auth = _tls(admin, auth, problem, read_text)
    return auth if len(problems) == start else None


_Report = Callable[[str, str], None]


def _sasl(admin: Mapping[str, Any], auth: KafkaAuth, problem: _Report) -> KafkaAuth:
    jaas = admin.get("sasl.jaas.config")
    if not isinstance(jaas, str) or not jaas.strip():
        problem(
            "sasl.jaas.config",
            f"{auth.protocol} needs the user and password: set sasl.jaas.config to "
            '\'org.apache.kafka.common.security.scram.ScramLoginModule required username="..." '
            'password="${secrets.kafka.password}";\' (or the PLAIN login module)',
        )
        return auth
    match = _JAAS.match(jaas)
    if match is None:
        problem("sasl.jaas.config", "expected '<LoginModule> required username=\"...\" ...;'")
        return auth
    module, rest = match.groups()
    if not module.endswith(("PlainLoginModule", "ScramLoginModule")):
        problem(
            "sasl.jaas.config",
            f"Knative's KafkaSource and KafkaSink take a user and password (the PLAIN or SCRAM "
            f"login module), not {module}",
        )
        return auth
    options = {
        m.group(1): m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
        for m in _JAAS_OPTION.finditer(rest)
    }
    if not options.get("username") or not options.get("password"):
        problem("sasl.jaas.config", "the login module needs both username and password")
        return auth
    mechanism = admin.get("sasl.mechanism")
    if mechanism is None and module.endswith("PlainLoginModule"):
        mechanism = "PLAIN"
    if mechanism is None:
        problem("sasl.mechanism", "the SCRAM login module needs SCRAM-SHA-256 or SCRAM-SHA-512")
        return auth
    mechanism = str(mechanism).upper()
    if mechanism not in MECHANISMS:
        problem(
            "sasl.mechanism",
            f"Knative's KafkaSource and KafkaSink take {', '.join(MECHANISMS)}, not {mechanism}",
        )
        return auth
    return replace(
        auth, mechanism=mechanism, user=options["username"], password=options["password"]
    )


def _tls(
    admin: Mapping[str, Any], auth: KafkaAuth, problem: _Report, read_text: ReadText
) -> KafkaAuth:
    algorithm = admin.get("ssl.endpoint.identification.algorithm", "https")
    if str(algorithm).lower() != "https":
        problem(
            "ssl.endpoint.identification.algorithm",
            "Knative's Kafka data plane always verifies the brokers' host names: remove this "
            "setting and give the brokers certificates for the names in bootstrapServers",
        )
    if "ssl.key.password" in admin:
        problem(
            "ssl.key.password",
            "Knative takes only an unencrypted client key (PKCS#8 PEM): decrypt it "
            "(openssl pkcs8 -topk8 -nocrypt) and remove ssl.key.password",
        )
    ca = _pem_source(admin, "truststore", "ssl.truststore.certificates", problem, read_text)
    ca_cert = None
    if ca is not None:
        key, text = ca
        certificates = _blocks(text, "CERTIFICATE")
        if not certificates:
            problem(key, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        ca_cert = "".join(certificates) or None
    user_cert = user_key = None
    keystore_file = False
    if "ssl.keystore.certificate.chain" in admin or "ssl.keystore.key" in admin:
        chain = admin.get("ssl.keystore.certificate.chain")
        key_text = admin.get("ssl.keystore.key")
        if not isinstance(chain, str) or not isinstance(key_text, str):
            problem(
                "ssl.keystore.key",
                "ssl.keystore.certificate.chain and ssl.keystore.key go together (PEM text)",
            )
        else:
            user_cert, user_key = _client_pair(chain, key_text, "ssl.keystore.key", problem)
    else:
        keystore = _pem_source(admin, "keystore", None, problem, read_text)
        if keystore is not None:
            key, text = keystore
            keystore_file = True
            user_cert, user_key = _client_pair(text, text, key, problem)
    return replace(
        auth,
        ca_cert=ca_cert,
        user_cert=user_cert,
        user_key=user_key,
        truststore_file=ca is not None and ca[0] == "ssl.truststore.location",
        keystore_file=keystore_file,
    )


def _pem_source(
    admin: Mapping[str, Any],
    store: str,
    inline: str | None,
    problem: _Report,
    read_text: ReadText,
) -> tuple[str, str] | None:
    """(the property it came from, PEM text) of the trust or key store, if any."""
    if inline is not None and inline in admin:
        value = admin[inline]
        if not isinstance(value, str):
            problem(inline, "must be PEM text")
            return None
        return inline, value
    location = f"ssl.{store}.location"
    if location not in admin:
        return None
    kind = str(admin.get(f"ssl.{store}.type", "")).upper()
    if kind not in ("", "PEM"):
        problem(
            f"ssl.{store}.type",
            f"Knative takes PEM files only, not {kind}: convert the {store} to PEM and set "
            f"ssl.{store}.type: PEM",
        )
        return None
    path = str(admin[location])
    try:
        text = read_text(path)
    except UnicodeDecodeError:
        text = ""  # binary: a JKS or PKCS#12 store
    except OSError as error:
        problem(location, f"cannot read {path}: {error.strerror or error}")
        return None
    if "-----BEGIN " not in text:
        # Without a type, a PEM file is read as PEM (as Sluice's clients do); anything else is
        # a JKS or PKCS#12 store, which Knative cannot take.
        problem(
            f"ssl.{store}.type" if not kind else location,
            f"{path} is not PEM text (a JKS or PKCS#12 store?): Knative takes PEM files only",
        )
        return None
    return location, text


def _client_pair(
    chain: str, key_text: str, key: str, problem: _Report
) -> tuple[str | None, str | None]:
    certificates = "".join(_blocks(chain, "CERTIFICATE"))
    keys = _blocks(key_text, "PRIVATE KEY")
    others = [
        label
        for label in ("RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
        if _blocks(key_text, label)
    ]
    if not certificates:
        problem(key, "holds no PEM client certificate (-----BEGIN CERTIFICATE-----)")
    if not keys:
        reason = (
            f"holds a {others[0]}, which Knative's Java data plane does not read: convert it "
            "to an unencrypted PKCS#8 key (openssl pkcs8 -topk8 -nocrypt)"
            if others
            else "holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
        )
        problem(key, reason)
    if not certificates or not keys:
        return None, None
    return certificates, keys[0]


def _blocks(text: str, label: str) -> list[str]:
    return [m.group(0) + "\n" for m in _PEM.finditer(text) if m.group(1) == label]
