"""A secured Kafka (TLS, SASL) on Knative: the credentials Secret, KafkaSource ``spec.net``,
KafkaSink ``spec.auth``, the pods' certificate files, every object valid against its CRD, and a
clear error for each setting Knative cannot express."""

from __future__ import annotations

import base64
import datetime
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from knative import InvalidSettings, Manifest, build_manifests, read_app_files
from knative import settings_from_instance as knative_settings
from sluice.application import load_application, plan_application
from sluice.application.model import ClusterSpec, InstanceSpec
from sluice.kafka import KafkaSettings
from tests.knative import schemas
from tests.knative.conftest import HERE, HTTP_GATEWAYS, find

DEAD_LETTER = HERE / "apps" / "dead-letter"
PASSWORD = "s3cret-Pa55word"
SINK_KEYS = {"protocol", "sasl.mechanism", "user", "password", "ca.crt", "user.crt", "user.key"}


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, Any] | None = None
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _key(key: ec.EllipticCurvePrivateKey, form: serialization.PrivateFormat) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, form, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CA, a client certificate it signed, and both as the PEM files Kafka clients read."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test-ca", ca_key)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate("orders-app", client_key, ("test-ca", ca_key))
    pkcs8 = _key(client_key, serialization.PrivateFormat.PKCS8)
    (folder / "ca.pem").write_text(_pem(ca))
    (folder / "client.pem").write_text(pkcs8 + _pem(client))
    (folder / "client-sec1.pem").write_text(
        _key(client_key, serialization.PrivateFormat.TraditionalOpenSSL) + _pem(client)
    )
    return {
        "dir": folder,
        "ca": _pem(ca),
        "cert": _pem(client),
        "key": pkcs8,
    }


def _write(tmp_path: Path, admin: dict[str, Any], **compute: Any) -> tuple[Path, Path]:
    instance = tmp_path / "instance.yaml"
    secrets = tmp_path / "secrets.yaml"
    instance.write_text(
        yaml.safe_dump(
            {
                "instance": {
                    "streamingCluster": {
                        "type": "kafka",
                        "configuration": {"admin": {"bootstrap.servers": "kafka:9093", **admin}},
                    },
                    "computeCluster": {
                        "type": "knative",
                        "configuration": {
                            "namespace": "tenant-a",
                            "bootstrapServers": "kafka-bootstrap.kafka:9093",
                            **compute,
                        },
                    },
                }
            }
        )
    )
    secrets.write_text(
        yaml.safe_dump({"secrets": [{"id": "kafka", "data": {"password": PASSWORD}}]})
    )
    return instance, secrets


def secured(
    tmp_path: Path, admin: dict[str, Any], app_dir: Path = DEAD_LETTER, **compute: Any
) -> list[Manifest]:
    instance, secrets = _write(tmp_path, admin, **compute)
    app = load_application(app_dir, instance=instance, secrets=secrets)
    files = read_app_files(app_dir, instance=instance, secrets=secrets)
    settings = knative_settings(app.instance)
    return build_manifests(plan_application(app), app, files, settings)


def instance_spec(admin: dict[str, Any]) -> InstanceSpec:
    """An instance as the loader makes it (without the loader's own checks of the Kafka client
    properties, so that this generator's checks are the ones seen)."""
    return InstanceSpec(
        ClusterSpec("kafka", {"admin": {"bootstrap.servers": "kafka:9093", **admin}}),
        ClusterSpec("knative", {"namespace": "tenant-a"}),
    )


def refused(admin: dict[str, Any], match: str | None = None) -> list[str]:
    """The YAML paths an :class:`InvalidSettings` names for ``admin``."""
    with pytest.raises(InvalidSettings, match=match) as caught:
        knative_settings(instance_spec(admin))
    for problem in caught.value.problems:
        assert problem.file == "instance.yaml"
        assert problem.path in str(caught.value)
    return [p.path for p in caught.value.problems]


def scram_tls(pki: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="orders" password="${secrets.kafka.password}";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki["dir"] / "ca.pem"),
        **more,
    }


def decoded(secret: Manifest) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_sasl_ssl_with_scram_a_ca_file_and_a_client_certificate(
    tmp_path: Path, pki: dict[str, Any]
) -> None:
    admin = scram_tls(
        pki,
        **{"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki["dir"] / "client.pem")},
    )
    objects = secured(tmp_path, admin)
    for manifest in objects:
        assert schemas.problems(manifest) == [], (manifest["kind"], manifest["metadata"]["name"])

    credentials = decoded(find(objects, "Secret", "dead-letter-kafka"))
    assert set(credentials) == SINK_KEYS | {"user.pem"}
    assert credentials["protocol"] == "SASL_SSL"
    assert credentials["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (credentials["user"], credentials["password"]) == ("orders", PASSWORD)
    assert credentials["ca.crt"] == pki["ca"]
    assert credentials["user.crt"] == pki["cert"]
    assert credentials["user.key"] == pki["key"]
    assert credentials["user.pem"] == pki["key"] + pki["cert"]

    ref = {"name": "dead-letter-kafka"}
    source = find(objects, "KafkaSource", "dead-letter-validate")
    assert source["spec"]["net"] == {
        "sasl": {
            "enable": True,
            "user": {"secretKeyRef": {**ref, "key": "user"}},
            "password": {"secretKeyRef": {**ref, "key": "password"}},
            "type": {"secretKeyRef": {**ref, "key": "sasl.mechanism"}},
        },
        "tls": {
            "enable": True,
            "caCert": {"secretKeyRef": {**ref, "key": "ca.crt"}},
            "cert": {"secretKeyRef": {**ref, "key": "user.crt"}},
            "key": {"secretKeyRef": {**ref, "key": "user.key"}},
        },
    }
    sink = find(objects, "KafkaSink", "dead-letter-orders-deadletter")
    assert sink["spec"]["auth"] == {"secret": {"ref": ref}}

    # No credential in plain outside the Secrets.
    for manifest in objects:
        if manifest["kind"] != "Secret":
            text = yaml.safe_dump(manifest)
            assert PASSWORD not in text and "PRIVATE KEY" not in text, manifest["kind"]


def test_the_pods_read_the_certificates_from_the_kafka_secret(
    tmp_path: Path, pki: dict[str, Any]
) -> None:
    admin = scram_tls(
        pki,
        **{"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki["dir"] / "client.pem")},
    )
    objects = secured(tmp_path, admin, HTTP_GATEWAYS)
    app_secret = decoded(find(objects, "Secret", "http-gateways-secrets"))
    pod_admin = yaml.safe_load(app_secret["instance.yaml"])["instance"]["streamingCluster"][
        "configuration"
    ]["admin"]
    assert pod_admin["ssl.truststore.location"] == "/etc/sluice/kafka/ca.crt"
    assert pod_admin["ssl.keystore.location"] == "/etc/sluice/kafka/user.pem"
    assert pod_admin["ssl.truststore.type"] == pod_admin["ssl.keystore.type"] == "PEM"
    assert pod_admin["sasl.jaas.config"] == admin["sasl.jaas.config"]  # resolved in the pod
    services = [o for o in objects if o["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services} >= {"http-gateways-gateway"}
    for service in services:
        spec = service["spec"]["template"]["spec"]
        assert {
            "name": "kafka-tls",
            "secret": {
                "secretName": "http-gateways-kafka",
                "items": [
                    {"key": "ca.crt", "path": "ca.crt"},
                    {"key": "user.pem", "path": "user.pem"},
                ],
            },
        } in spec["volumes"]
        [container] = spec["containers"]
        assert {
            "name": "kafka-tls",
            "mountPath": "/etc/sluice/kafka",
            "readOnly": True,
        } in container["volumeMounts"]
        assert schemas.problems(service) == []


def test_sasl_plaintext_with_plain_has_no_tls(tmp_path: Path) -> None:
    admin = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="orders" password="plain-pass";',
    }
    objects = secured(tmp_path, admin)
    assert decoded(find(objects, "Secret", "dead-letter-kafka")) == {
        "protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "user": "orders",
        "password": "plain-pass",
    }
    net = find(objects, "KafkaSource", "dead-letter-store")["spec"]["net"]
    assert set(net) == {"sasl"}
    for service in (o for o in objects if o["kind"] == "Service"):
        volumes = service["spec"]["template"]["spec"]["volumes"]
        assert all(v["name"] != "kafka-tls" for v in volumes)
    for manifest in objects:
        assert schemas.problems(manifest) == []


def test_ssl_with_an_inline_ca_and_the_system_cas(tmp_path: Path, pki: dict[str, Any]) -> None:
    inline = secured(
        tmp_path, {"security.protocol": "SSL", "ssl.truststore.certificates": pki["ca"]}
    )
    assert decoded(find(inline, "Secret", "dead-letter-kafka")) == {
        "protocol": "SSL",
        "ca.crt": pki["ca"],
    }
    tls = find(inline, "KafkaSource", "dead-letter-store")["spec"]["net"]
    assert tls == {
        "tls": {
            "enable": True,
            "caCert": {"secretKeyRef": {"name": "dead-letter-kafka", "key": "ca.crt"}},
        }
    }
    # Inline PEM reaches the pods as written: nothing to mount.
    for service in (o for o in inline if o["kind"] == "Service"):
        assert all(v["name"] != "kafka-tls" for v in service["spec"]["template"]["spec"]["volumes"])

    system = secured(tmp_path, {"security.protocol": "ssl"})
    assert decoded(find(system, "Secret", "dead-letter-kafka")) == {"protocol": "SSL"}
    assert find(system, "KafkaSource", "dead-letter-store")["spec"]["net"] == {
        "tls": {"enable": True}
    }
    for manifest in [*inline, *system]:
        assert schemas.problems(manifest) == []


def test_plaintext_adds_nothing(tmp_path: Path) -> None:
    objects = secured(tmp_path, {})
    assert [o for o in objects if o["metadata"]["name"] == "dead-letter-kafka"] == []
    assert "net" not in find(objects, "KafkaSource", "dead-letter-store")["spec"]
    assert "auth" not in find(objects, "KafkaSink", "dead-letter-orders-deadletter")["spec"]


ADMIN = "instance.streamingCluster.configuration.admin"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"sasl.mechanism": "GSSAPI"}, "sasl.mechanism"),
        ({"sasl.mechanism": "OAUTHBEARER"}, "sasl.mechanism"),
        ({"sasl.mechanism": None}, "sasl.mechanism"),  # SCRAM, but which?
        ({"sasl.jaas.config": None}, "sasl.jaas.config"),
        (
            {"sasl.jaas.config": "com.sun.security.auth.module.Krb5LoginModule required;"},
            "sasl.jaas.config",
        ),
        ({"ssl.truststore.type": "JKS"}, "ssl.truststore.type"),
        ({"ssl.truststore.type": "PKCS12"}, "ssl.truststore.type"),
        ({"ssl.truststore.location": "/no/such/ca.pem"}, "ssl.truststore.location"),
        ({"ssl.key.password": "k"}, "ssl.key.password"),
        ({"ssl.endpoint.identification.algorithm": ""}, "ssl.endpoint.identification.algorithm"),
        ({"security.protocol": "SASL_SSH"}, "security.protocol"),
    ],
)
def test_what_knative_cannot_express_is_named(
    pki: dict[str, Any], change: dict[str, Any], named: str
) -> None:
    admin = {k: v for k, v in {**scram_tls(pki), **change}.items() if v is not None}
    assert f"{ADMIN}.{named}" in refused(admin)


def test_a_client_key_knatives_java_data_plane_cannot_read(pki: dict[str, Any]) -> None:
    keystore = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki["dir"] / "client-sec1.pem"),
    }
    paths = refused(scram_tls(pki, **keystore), match="EC PRIVATE KEY.*PKCS#8")
    assert paths == [f"{ADMIN}.ssl.keystore.location"]


def test_a_ca_file_without_a_certificate(tmp_path: Path, pki: dict[str, Any]) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    admin = scram_tls(pki, **{"ssl.truststore.location": str(empty)})
    assert refused(admin) == [f"{ADMIN}.ssl.truststore.location"]


def test_every_problem_at_once(pki: dict[str, Any]) -> None:
    admin = scram_tls(
        pki, **{"sasl.mechanism": "GSSAPI", "ssl.key.password": "k", "ssl.truststore.type": "JKS"}
    )
    assert sorted(refused(admin)) == [
        f"{ADMIN}.sasl.mechanism",
        f"{ADMIN}.ssl.key.password",
        f"{ADMIN}.ssl.truststore.type",
    ]


def test_a_store_without_a_type_is_read_as_pem_when_it_is(
    tmp_path: Path, pki: dict[str, Any]
) -> None:
    admin = scram_tls(pki)
    del admin["ssl.truststore.type"]
    objects = secured(tmp_path, admin)
    assert decoded(find(objects, "Secret", "dead-letter-kafka"))["ca.crt"] == pki["ca"]
    store = tmp_path / "truststore.jks"
    store.write_bytes(bytes(range(256)) * 4)  # not text, not PEM: a binary store
    admin["ssl.truststore.location"] = str(store)
    assert refused(admin, match="not PEM text") == [f"{ADMIN}.ssl.truststore.type"]
    admin["ssl.truststore.type"] = "PEM"  # said to be PEM, but it is not
    assert refused(admin, match="not PEM text") == [f"{ADMIN}.ssl.truststore.location"]


def test_the_client_certificate_file_of_the_pods_loads_in_sluices_client(
    tmp_path: Path, pki: dict[str, Any]
) -> None:
    """user.pem (key and chain in one PEM file) and ca.crt as mounted make a TLS context."""
    admin = {
        "security.protocol": "SSL",
        "ssl.truststore.location": str(pki["dir"] / "ca.pem"),
        "ssl.keystore.location": str(pki["dir"] / "client.pem"),
    }
    credentials = decoded(find(secured(tmp_path, admin), "Secret", "dead-letter-kafka"))
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for key in ("ca.crt", "user.pem"):
        (mounted / key).write_text(credentials[key])
    options = {
        "security.protocol": "SSL",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(mounted / "ca.crt"),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(mounted / "user.pem"),
    }
    context = KafkaSettings("kafka:9093", options).client_kwargs("producer")["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "test-ca"),),)
