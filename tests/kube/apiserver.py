"""Start a real etcd and kube-apiserver for tests, the way envtest does, and install the Knative CRDs.

There are no controllers, no Knative webhooks and no status reconciliation: only the API server's
own behaviour (OpenAPI schema validation of the CRDs, server-side apply, RBAC, resource versions).

Connection: ``KubeApi.host`` is ``https://127.0.0.1:<port>``; TLS is verified against
``KubeApi.ca_file`` (a throwaway CA made for this server, valid for 127.0.0.1 and localhost), and
requests authenticate with the static bearer ``KubeApi.token`` (user ``sluice-admin`` in group
``system:masters``). ``KubeApi.kubeconfig`` holds the same for tools that read a kubeconfig.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s_client

from sluice.net import LOOPBACK, free_port

CRDS_DIR = Path(__file__).parent / "crds"
"""The CRDs (and the Serving ``config-features`` ConfigMap) installed into every server."""

ADMIN_USER = "sluice-admin"
ADMIN_GROUP = "system:masters"

START_TIMEOUT = 90.0
"""Seconds each process gets to become healthy (etcd, then kube-apiserver)."""
STOP_TIMEOUT = 15.0
"""Seconds each process gets after SIGTERM before it is killed."""


class KubeApiError(RuntimeError):
    """etcd or kube-apiserver did not start, or the CRDs could not be installed."""


@dataclass(frozen=True)
class KubeApi:
    """A running API server and how to reach it as a cluster admin."""

    host: str
    """``https://127.0.0.1:<port>``"""
    token: str
    """Static bearer token of ``sluice-admin`` (group ``system:masters``)."""
    ca_file: Path
    """PEM CA that signed the serving certificate; verify TLS against it."""
    kubeconfig: Path
    """A kubeconfig file with this server, CA and token as its current context."""
    etcd_url: str
    """``http://127.0.0.1:<port>`` of the etcd behind the server."""

    def configuration(self) -> k8s_client.Configuration:
        """A ``kubernetes`` client configuration for this server (TLS verified)."""
        config = k8s_client.Configuration(
            host=self.host,
            api_key={"authorization": self.token},
            api_key_prefix={"authorization": "Bearer"},
        )
        config.ssl_ca_cert = str(self.ca_file)
        config.verify_ssl = True
        return config

    def client(self) -> k8s_client.ApiClient:
        """A new ``kubernetes.client.ApiClient``; close it (or use it in ``with``) when done."""
        return k8s_client.ApiClient(self.configuration())

    def ssl_context(self) -> ssl.SSLContext:
        """TLS context that trusts this server's CA only."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def http_client(self, timeout: float = 30.0) -> httpx.Client:
        """An ``httpx.Client`` with ``base_url=host``, the admin token and TLS verified."""
        return httpx.Client(
            base_url=self.host,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=self.ssl_context(),
            timeout=timeout,
        )


# ---- certificates and keys ---------------------------------------------------------------------


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_certs(cert_dir: Path) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate for 127.0.0.1/localhost signed by it: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=1)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sluice-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_file = cert_dir / "ca.crt"
    cert_file = cert_dir / "apiserver.crt"
    key_file = cert_dir / "apiserver.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private_key(key_file, key)
    return ca_file, cert_file, key_file


def _write_service_account_keys(directory: Path) -> tuple[Path, Path]:
    """The key pair that signs and verifies service account tokens: (private, public)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "sa.key"
    public = directory / "sa.pub"
    _write_private_key(private, key)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def _write_kubeconfig(path: Path, host: str, ca_file: Path, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sluice-test",
                "cluster": {"server": host, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [
            {"name": "sluice-test", "context": {"cluster": "sluice-test", "user": ADMIN_USER}}
        ],
        "current-context": "sluice-test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


# ---- processes ---------------------------------------------------------------------------------


class _Process:
    """A child process whose output goes to a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: list[str], log_file: Path) -> None:
        self.name = name
        self.log_file = log_file
        with log_file.open("wb") as log:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> KubeApiError:
        return KubeApiError(f"{self.name} {what}; last lines of its log:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def _wait_until(process: _Process, check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise process.failure(f"exited with code {process.popen.returncode} before {what}")
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(0.2)
    raise process.failure(f"was not {what} within {START_TIMEOUT:.0f} s")


def _binary(assets: Path, name: str) -> Path:
    path = assets / name
    if not os.access(path, os.X_OK):
        raise KubeApiError(f"{path} is missing or not executable (run scripts/kube-test-env)")
    return path


def _etcd_supports(etcd: Path, flag: str) -> bool:
    result = subprocess.run(
        [str(etcd), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    return flag in result.stdout or flag in result.stderr


def _start_etcd(etcd: Path, workdir: Path) -> tuple[_Process, str]:
    client_url = f"http://{LOOPBACK}:{free_port()}"
    peer_url = f"http://{LOOPBACK}:{free_port()}"
    argv = [
        str(etcd),
        "--name=default",
        f"--data-dir={workdir / 'etcd'}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=default={peer_url}",
        "--log-level=warn",
    ]
    if _etcd_supports(etcd, "--unsafe-no-fsync"):
        argv.append("--unsafe-no-fsync=true")
    process = _Process("etcd", argv, workdir / "etcd.log")

    def healthy() -> bool:
        response = httpx.get(f"{client_url}/health", timeout=2.0)
        return response.status_code == 200 and response.json().get("health") == "true"

    try:
        _wait_until(process, healthy, "healthy")
    except BaseException:
        process.stop()
        raise
    return process, client_url


def _start_apiserver(
    apiserver: Path, workdir: Path, etcd_url: str
) -> tuple[_Process, str, str, Path]:
    cert_dir = workdir / "certs"
    cert_dir.mkdir()
    ca_file, cert_file, key_file = _write_certs(cert_dir)
    sa_private, sa_public = _write_service_account_keys(cert_dir)
    token = secrets.token_urlsafe(32)
    token_file = workdir / "tokens.csv"
    token_file.write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"{ADMIN_GROUP}"\n')
    token_file.chmod(0o600)

    port = free_port()
    host = f"https://{LOOPBACK}:{port}"
    argv = [
        str(apiserver),
        f"--etcd-servers={etcd_url}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={cert_file}",
        f"--tls-private-key-file={key_file}",
        f"--secure-port={port}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",
        f"--token-auth-file={token_file}",
        f"--service-account-issuer={host}/",
        f"--service-account-key-file={sa_public}",
        f"--service-account-signing-key-file={sa_private}",
        "--disable-admission-plugins=ServiceAccount",
    ]
    process = _Process("kube-apiserver", argv, workdir / "kube-apiserver.log")
    tls = ssl.create_default_context(cafile=str(ca_file))
    headers = {"Authorization": f"Bearer {token}"}

    def ready() -> bool:
        response = httpx.get(f"{host}/readyz", headers=headers, verify=tls, timeout=5.0)
        return response.status_code == 200

    try:
        _wait_until(process, ready, "ready (/readyz)")
    except BaseException:
        process.stop()
        raise
    return process, host, token, ca_file


# ---- CRDs --------------------------------------------------------------------------------------


def _load_manifests(directory: Path) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict):
                manifests.append(document)
    return manifests


def without_conversion_webhook(crd: dict[str, Any]) -> dict[str, Any]:
    """``crd`` with a ``Webhook`` conversion replaced by ``None``: no webhook runs here.

    With ``None`` the server converts between served versions by rewriting ``apiVersion`` only,
    so objects should be created at the storage version.
    """
    crd = copy.deepcopy(crd)
    spec = crd.get("spec", {})
    conversion = spec.get("conversion")
    if isinstance(conversion, dict) and conversion.get("strategy") != "None":
        spec["conversion"] = {"strategy": "None"}
    return crd


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.is_error:
        raise KubeApiError(f"{what}: HTTP {response.status_code}: {response.text[:2000]}")
    body: dict[str, Any] = response.json()
    return body


def _wait_established(http: httpx.Client, name: str) -> None:
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        crd = _check(http.get(path), f"reading CRD {name}")
        conditions = crd.get("status", {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise KubeApiError(f"CRD {name} was not Established within {START_TIMEOUT:.0f} s")


def install_manifests(http: httpx.Client, directory: Path = CRDS_DIR) -> list[str]:
    """Create the CRDs (and ConfigMaps, with their namespaces) found in ``directory``.

    ``http`` is a client of the server (``KubeApi.http_client()``). The manifests are sent as they
    are, except for conversion webhooks. Waits until every CRD is Established; returns their names.
    """
    crds: list[str] = []
    namespaces: set[str] = set()
    for manifest in _load_manifests(directory):
        kind = manifest.get("kind")
        name = manifest.get("metadata", {}).get("name")
        if kind == "CustomResourceDefinition":
            response = http.post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                json=without_conversion_webhook(manifest),
            )
            _check(response, f"creating CRD {name}")
            crds.append(name)
        elif kind == "ConfigMap" and manifest.get("apiVersion") == "v1":
            namespace = manifest["metadata"].get("namespace", "default")
            if namespace not in namespaces and namespace != "default":
                response = http.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
                _check(response, f"creating namespace {namespace}")
                namespaces.add(namespace)
            response = http.post(f"/api/v1/namespaces/{namespace}/configmaps", json=manifest)
            _check(response, f"creating ConfigMap {namespace}/{name}")
    for crd in crds:
        _wait_established(http, crd)
    return crds


# ---- entry point -------------------------------------------------------------------------------


@contextlib.contextmanager
def running_apiserver(assets: Path, *, crds: Path | None = CRDS_DIR) -> Iterator[KubeApi]:
    """etcd and kube-apiserver from ``assets`` running on free loopback ports, CRDs installed.

    ``crds=None`` skips the CRD installation. Both processes are stopped (SIGTERM, then SIGKILL)
    and their temporary directory removed on exit.
    """
    etcd_bin = _binary(assets, "etcd")
    apiserver_bin = _binary(assets, "kube-apiserver")
    workdir = Path(tempfile.mkdtemp(prefix="sluice-kube-"))
    processes: list[_Process] = []
    try:
        etcd, etcd_url = _start_etcd(etcd_bin, workdir)
        processes.append(etcd)
        apiserver, host, token, ca_file = _start_apiserver(apiserver_bin, workdir, etcd_url)
        processes.append(apiserver)
        kubeconfig = workdir / "kubeconfig"
        _write_kubeconfig(kubeconfig, host, ca_file, token)
        api = KubeApi(
            host=host, token=token, ca_file=ca_file, kubeconfig=kubeconfig, etcd_url=etcd_url
        )
        if crds is not None:
            with api.http_client() as http:
                install_manifests(http, crds)
        yield api
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(workdir, ignore_errors=True)
