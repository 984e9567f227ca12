"""Kafka client properties from instance.yaml: checked by the loader (each bad one named at its
line, secret values hidden), filled from secrets.yaml, and the ``ssl.*`` trust and key stores
(PEM files or text, PKCS12, JKS made by the JDK's keytool) read into the SSL context."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from sluice.application import load_application
from sluice.application.kafka_properties import check_properties
from sluice.errors import InvalidApplication, KafkaError
from sluice.kafka import KafkaSettings
from sluice.kafka.local.certs import key_pem, make_ca, make_certificate, pem

PIPELINE = """
topics:
  - name: in
    creation-mode: create-if-not-exists
pipeline:
  - id: copy
    type: identity
    input: in
"""


def _app(tmp_path: Path, admin: str, secrets: str | None = None) -> tuple[Path, Path, Path]:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / "pipeline.yaml").write_text(PIPELINE)
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n      admin:\n"
        + "".join(f"        {line}\n" for line in admin.strip().splitlines())
    )
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text(secrets or "secrets: []\n")
    return app, instance, secrets_file


@pytest.mark.parametrize(
    ("properties", "named"),
    [
        ({"schema.registry.url": "http://r"}, "schema.registry.url"),
        ({"acks": "1"}, "acks"),
        ({"sasl.mechanism": "OAUTHBEARER"}, "sasl.oauthbearer.token.endpoint.url"),
        ({"sasl.mechanism": "KERBEROS"}, "sasl.mechanism"),
        (
            {
                "sasl.jaas.config": "org.apache.kafka.common.security.oauthbearer."
                'OAuthBearerLoginModule required clientId="app";'
            },
            "sasl.jaas.config",
        ),
        ({"sasl.login.callback.handler.class": "com.example.Login"}, "sasl.login.callback"),
        ({"sasl.oauthbearer.scope.claim.name": "scp"}, "sasl.oauthbearer.scope.claim.name"),
        ({"security.protocol": "SASL_SSL"}, "sasl.jaas.config"),
        ({"sasl.jaas.config": "x.Krb5LoginModule required;"}, "sasl.jaas.config"),
        ({"ssl.truststore.type": "JCEKS"}, "ssl.truststore.type"),
        ({"ssl.keystore.key": "k"}, "ssl.keystore.key"),
        ({"ssl.truststore.type": "PEM", "ssl.truststore.password": "p"}, "ssl.truststore.password"),
        ({"ssl.keystore.type": "PKCS12"}, "ssl.keystore.type"),
        (
            {"ssl.truststore.type": "JKS", "ssl.truststore.certificates": "-----BEGIN"},
            "ssl.truststore.certificates",
        ),
        ({"ssl.endpoint.identification.algorithm": "http"}, "ssl.endpoint.identification"),
        ({"linger.ms": "soon"}, "linger.ms"),
    ],
)
def test_each_unsupported_property_is_named(properties: dict[str, Any], named: str) -> None:
    problems = check_properties(properties)
    assert problems, properties
    assert problems[0][0].startswith(named)
    with pytest.raises(KafkaError, match=f"Kafka client option '{named}"):
        KafkaSettings("b:1", properties)


def test_supported_properties_pass() -> None:
    properties = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="u" password="p";',
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.location": "ca.p12",
        "ssl.truststore.password": "changeit",
        "ssl.keystore.type": "JKS",
        "ssl.keystore.location": "client.jks",
        "ssl.keystore.password": "changeit",
        "ssl.key.password": "changeit",
        "ssl.endpoint.identification.algorithm": "",
        "ssl.enabled.protocols": "TLSv1.3",
    }
    assert check_properties(properties) == []


def test_the_loader_names_each_bad_property_at_its_line_without_secret_values(
    tmp_path: Path,
) -> None:
    app, instance, secrets = _app(
        tmp_path,
        """
bootstrap.servers: "b:1"
security.protocol: "${secrets.kafka.protocol}"
schema.registry.url: "http://registry"
ssl.truststore.type: JCEKS
""",
        "secrets:\n  - id: kafka\n    data:\n      protocol: hunter2-not-a-protocol\n",
    )
    with pytest.raises(InvalidApplication) as caught:
        load_application(app, instance=instance, secrets=secrets)
    text = str(caught.value)
    admin = "instance.streamingCluster.configuration.admin"
    assert f"instance.yaml:8 {admin}.schema.registry.url: not supported" in text
    assert f"instance.yaml:7 {admin}.security.protocol: expected one of PLAINTEXT" in text
    assert f"instance.yaml:9 {admin}.ssl.truststore.type: expected one of PEM, PKCS12" in text
    assert "hunter2" not in text
    assert "(a secret value)" in text


def test_credentials_come_from_secrets_yaml(tmp_path: Path) -> None:
    app, instance, secrets = _app(
        tmp_path,
        """
bootstrap.servers: "b:1"
security.protocol: SASL_SSL
sasl.mechanism: SCRAM-SHA-512
sasl.jaas.config: 'org.apache.kafka.common.security.scram.ScramLoginModule required username="${secrets.kafka.username}" password="${secrets.kafka.password}";'
ssl.truststore.type: PEM
ssl.truststore.certificates: "${secrets.kafka.ca}"
""",
        "secrets:\n  - id: kafka\n    data:\n      username: app\n      password: s3cret\n"
        "      ca: |\n" + "".join(f"        {line}\n" for line in _ca_pem().splitlines()),
    )
    loaded = load_application(app, instance=instance, secrets=secrets)
    settings = KafkaSettings("b:1", loaded.instance.kafka_client_options)
    for role in ("producer", "consumer", "admin"):
        kwargs = settings.client_kwargs(role)
        assert kwargs["sasl_plain_username"] == "app"
        assert kwargs["sasl_plain_password"] == "s3cret"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert _trusted(kwargs["ssl_context"]) == ["test CA"]


# --- trust and key stores -----------------------------------------------------------------------

java = pytest.mark.java
"""The stores are made with the JDK's keytool."""

_CA = make_ca("test CA")


def _ca_pem() -> str:
    return pem(_CA[1]).decode()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test CA and a client key and certificate as PEM, PKCS12 and (by keytool) JKS."""
    directory = tmp_path_factory.mktemp("stores")
    ca_key, ca = _CA
    key, certificate = make_certificate(ca_key, ca, "client")
    (directory / "ca.pem").write_bytes(pem(ca))
    (directory / "client.pem").write_bytes(key_pem(key) + pem(certificate) + pem(ca))
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"keypass"),
    )
    (directory / "client-encrypted.pem").write_bytes(encrypted + pem(certificate))
    (directory / "client.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"client", key, certificate, [ca], serialization.BestAvailableEncryption(b"storepass")
        )
    )
    keytool = shutil.which("keytool")
    if keytool is None:
        pytest.fail("keytool (the JDK's) is needed to make JKS stores", pytrace=False)
    for store_type, name in (("JKS", "ca.jks"), ("PKCS12", "ca-keytool.p12")):
        subprocess.run(
            [keytool, "-importcert", "-noprompt", "-alias", "ca", "-file", str(directory / "ca.pem"),
             "-keystore", str(directory / name), "-storetype", store_type,
             "-storepass", "storepass"],
            check=True, capture_output=True,
        )  # fmt: skip
    subprocess.run(
        [keytool, "-importkeystore", "-noprompt", "-srckeystore", str(directory / "client.p12"),
         "-srcstoretype", "PKCS12", "-srcstorepass", "storepass",
         "-destkeystore", str(directory / "client.jks"), "-deststoretype", "JKS",
         "-deststorepass", "storepass", "-destkeypass", "storepass"],
        check=True, capture_output=True,
    )  # fmt: skip
    return directory


def _context(properties: dict[str, Any]) -> ssl.SSLContext:
    context: ssl.SSLContext = KafkaSettings(
        "b:1", {"security.protocol": "SSL", **properties}
    ).client_kwargs("producer")["ssl_context"]
    return context


def _trusted(context: ssl.SSLContext) -> list[str]:
    names: list[str] = []
    for certificate in context.get_ca_certs():
        subject: Any = certificate["subject"]
        names += [value for ((key, value),) in subject if key == "commonName"]
    return names


@java
@pytest.mark.parametrize(
    "properties",
    [
        {"ssl.truststore.type": "PEM", "ssl.truststore.location": "ca.pem"},
        {"ssl.truststore.certificates": _ca_pem()},
        {"ssl.truststore.location": "ca.pem"},  # no type, PEM text: read as PEM
        {
            "ssl.truststore.type": "JKS",
            "ssl.truststore.location": "ca.jks",
            "ssl.truststore.password": "storepass",
        },
        {"ssl.truststore.location": "ca.jks"},  # JKS by default; no password: no check
        {
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": "ca-keytool.p12",
            "ssl.truststore.password": "storepass",
        },
        {
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": "client.p12",
            "ssl.truststore.password": "storepass",
        },
    ],
)
def test_trust_stores(stores: Path, properties: dict[str, str]) -> None:
    located = {k: str(stores / v) if k.endswith("location") else v for k, v in properties.items()}
    assert "test CA" in _trusted(_context(located))


@java
@pytest.mark.parametrize(
    "properties",
    [
        {"ssl.keystore.type": "PEM", "ssl.keystore.location": "client.pem"},
        {"ssl.keystore.location": "client.pem"},
        {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": "client-encrypted.pem",
            "ssl.key.password": "keypass",
        },
        {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": "client.p12",
            "ssl.keystore.password": "storepass",
        },
        {
            "ssl.keystore.type": "JKS",
            "ssl.keystore.location": "client.jks",
            "ssl.keystore.password": "storepass",
            "ssl.key.password": "storepass",
        },
    ],
)
def test_key_stores(stores: Path, properties: dict[str, str]) -> None:
    located = {k: str(stores / v) if k.endswith("location") else v for k, v in properties.items()}
    _context({**located, "ssl.truststore.location": str(stores / "ca.pem"),
              "ssl.truststore.type": "PEM"})  # fmt: skip


@java
def test_inline_pem_key_store(stores: Path) -> None:
    text = (stores / "client.pem").read_text()
    key = text[: text.index("-----END PRIVATE KEY-----") + len("-----END PRIVATE KEY-----")]
    chain = text[len(key) :]
    _context({"ssl.keystore.key": key, "ssl.keystore.certificate.chain": chain})


@java
@pytest.mark.parametrize(
    ("properties", "message"),
    [
        (
            {"ssl.truststore.location": "ca.jks", "ssl.truststore.password": "wrong-pw"},
            "'ssl.truststore.location': not a readable JKS trust store: wrong password",
        ),
        (
            {
                "ssl.truststore.type": "PKCS12",
                "ssl.truststore.location": "client.p12",
                "ssl.truststore.password": "wrong-pw",
            },
            "'ssl.truststore.location': not a readable PKCS12 trust store",
        ),
        (
            {"ssl.truststore.type": "PEM", "ssl.truststore.location": "client.p12"},
            "'ssl.truststore.location': not a readable PEM trust store",
        ),
        (
            {
                "ssl.keystore.location": "client.jks",
                "ssl.keystore.password": "storepass",
                "ssl.key.password": "wrong-pw",
            },
            "'ssl.keystore.location': not a readable JKS key store: wrong private key password",
        ),
        (
            {"ssl.keystore.type": "PEM", "ssl.keystore.location": "client-encrypted.pem"},
            "'ssl.keystore.location': cannot use the private key",
        ),
        (
            {"ssl.keystore.type": "PEM", "ssl.keystore.location": "missing.pem"},
            "'ssl.keystore.location': cannot read .*missing.pem: No such file",
        ),
    ],
)
def test_unreadable_stores_name_the_property_not_the_password(
    stores: Path, properties: dict[str, str], message: str
) -> None:
    located = {k: str(stores / v) if k.endswith("location") else v for k, v in properties.items()}
    with pytest.raises(KafkaError, match=message) as caught:
        _context(located)
    assert "wrong-pw" not in str(caught.value)
