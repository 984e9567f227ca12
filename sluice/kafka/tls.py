"""The SSL context of a Kafka client, from Kafka's Java ``ssl.*`` client properties.

Trust stores and key stores as the Java client reads them: PEM (a file, or the PEM text itself
in ``ssl.truststore.certificates`` / ``ssl.keystore.key`` + ``ssl.keystore.certificate.chain``,
typically from ``secrets.yaml``), PKCS12, and Java's JKS (read here: trusted certificates, and
private keys protected with the JDK's key protector). No trust store: the system's CAs, as a
managed Kafka service's certificates need. ``ssl.endpoint.identification.algorithm`` empty turns
the host name check off (the certificate chain is still verified).

Every failure is a :class:`~sluice.errors.KafkaError` naming the property and the file, never a
password.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from sluice.application.kafka_properties import store_type
from sluice.errors import KafkaError

__all__ = ["read_jks", "ssl_context"]

_JKS_MAGIC = 0xFEEDFEED
_JKS_KEY_PROTECTOR = bytes.fromhex("060a2b060104012a02110101")  # OID 1.3.6.1.4.1.42.2.17.1.1


def ssl_context(properties: Mapping[str, Any]) -> ssl.SSLContext:
    """A client SSL context verifying the brokers, with a client certificate when a key store is
    given."""
    # Not create_default_context: a given trust store replaces the system's CAs, as in Java.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    trusted = _trusted_pem(properties)
    if trusted is None:
        context.load_default_certs()
    else:
        try:
            context.load_verify_locations(cadata=trusted)
        except ssl.SSLError as error:
            raise KafkaError(f"Kafka client option 'ssl.truststore.*': {error}") from None
    if _has_keystore(properties):
        _load_keystore(context, properties)
    algorithm = str(properties.get("ssl.endpoint.identification.algorithm", "https"))
    if algorithm == "":
        context.check_hostname = False
    return context


def _read(properties: Mapping[str, Any], name: str) -> bytes:
    location = Path(str(properties[name]))
    try:
        return location.read_bytes()
    except OSError as error:
        raise KafkaError(
            f"Kafka client option {name!r}: cannot read {location}: {error.strerror}"
        ) from None


def _password(properties: Mapping[str, Any], name: str) -> bytes | None:
    value = properties.get(name)
    return None if value is None else str(value).encode()


def _sniffed(properties: Mapping[str, Any], kind: str, store: str, data: bytes) -> str:
    """A store given without ``ssl.<kind>.type`` that is PEM text is read as PEM (Java would
    insist on JKS, its default)."""
    if f"ssl.{kind}.type" not in properties and data.lstrip().startswith(b"-----BEGIN"):
        return "PEM"
    return store


def _trusted_pem(properties: Mapping[str, Any]) -> str | None:
    """The trusted certificates as PEM text, or None for the system's."""
    kind = store_type(properties, "truststore")
    if "ssl.truststore.certificates" in properties:
        return str(properties["ssl.truststore.certificates"])
    if "ssl.truststore.location" not in properties:
        return None
    data = _read(properties, "ssl.truststore.location")
    kind = _sniffed(properties, "truststore", kind, data)
    password = _password(properties, "ssl.truststore.password")
    what = "Kafka client option 'ssl.truststore.location'"
    certificates: list[x509.Certificate]
    try:
        if kind == "PEM":
            certificates = x509.load_pem_x509_certificates(data)
        elif kind == "PKCS12":
            loaded = pkcs12.load_pkcs12(data, password)
            certificates = [c.certificate for c in loaded.additional_certs]
            if loaded.cert is not None:
                certificates.append(loaded.cert.certificate)
        else:
            certificates = [x509.load_der_x509_certificate(c) for c in read_jks(data, password)[0]]
    except ValueError as error:
        raise KafkaError(f"{what}: not a readable {kind} trust store: {error}") from None
    if not certificates:
        raise KafkaError(f"{what}: the {kind} trust store holds no certificate")
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def _has_keystore(properties: Mapping[str, Any]) -> bool:
    return "ssl.keystore.location" in properties or "ssl.keystore.key" in properties


def _load_keystore(context: ssl.SSLContext, properties: Mapping[str, Any]) -> None:
    kind = store_type(properties, "keystore")
    key_password = _password(properties, "ssl.key.password")
    what = "Kafka client option 'ssl.keystore.location'"
    if kind == "JKS" and "ssl.keystore.type" not in properties:
        kind = _sniffed(properties, "keystore", kind, _read(properties, "ssl.keystore.location"))
    if kind == "PEM":
        if "ssl.keystore.key" in properties:
            pem = (
                str(properties["ssl.keystore.key"]).strip()
                + "\n"
                + str(properties["ssl.keystore.certificate.chain"]).strip()
                + "\n"
            ).encode()
            what = "Kafka client option 'ssl.keystore.key'"
        else:
            pem = _read(properties, "ssl.keystore.location")
        _load_pem_chain(context, pem, key_password, what)
        return
    data = _read(properties, "ssl.keystore.location")
    store_password = _password(properties, "ssl.keystore.password")
    try:
        if kind == "PKCS12":
            loaded = pkcs12.load_pkcs12(data, store_password)
            if loaded.key is None or loaded.cert is None:
                raise ValueError("it holds no private key with its certificate")
            key = loaded.key
            chain = [loaded.cert.certificate, *(c.certificate for c in loaded.additional_certs)]
        else:
            keys = read_jks(data, store_password, key_password or store_password)[1]
            if not keys:
                raise ValueError("it holds no private key")
            der_key, der_chain = keys[0]
            key = serialization.load_der_private_key(der_key, None)
            chain = [x509.load_der_x509_certificate(c) for c in der_chain]
    except ValueError as error:
        raise KafkaError(f"{what}: not a readable {kind} key store: {error}") from None
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    _load_pem_chain(context, pem, None, what)


def _load_pem_chain(context: ssl.SSLContext, pem: bytes, password: bytes | None, what: str) -> None:
    # SSLContext reads a certificate chain from files only: a private file, removed at once.
    descriptor, name = tempfile.mkstemp(prefix="sluice-kafka-", suffix=".pem")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        # No password: b"" rather than None, which would make OpenSSL ask on the terminal.
        context.load_cert_chain(name, password=password or b"")
    except ssl.SSLError as error:
        raise KafkaError(f"{what}: cannot use the private key and certificate: {error}") from None
    finally:
        os.unlink(name)


def read_jks(
    data: bytes, password: bytes | None, key_password: bytes | None = None
) -> tuple[list[bytes], list[tuple[bytes, list[bytes]]]]:
    """A Java KeyStore's trusted certificates (DER) and private keys (PKCS#8 DER, each with its
    certificate chain). The store's integrity is checked when ``password`` is given, as the JDK
    does; a :class:`ValueError` for anything else than a readable JKS."""
    reader = _Reader(data)
    magic, version, count = struct.unpack(">III", reader.take(12))
    if magic != _JKS_MAGIC or version not in (1, 2):
        raise ValueError("not a JKS key store")
    trusted: list[bytes] = []
    keys: list[tuple[bytes, list[bytes]]] = []
    for _ in range(count):
        (tag,) = struct.unpack(">I", reader.take(4))
        reader.utf()  # alias
        reader.take(8)  # creation date
        if tag == 1:
            protected = reader.block()
            (chain_length,) = struct.unpack(">I", reader.take(4))
            chain = [reader.certificate(version) for _ in range(chain_length)]
            if key_password is None:
                raise ValueError("a private key needs ssl.key.password or ssl.keystore.password")
            keys.append((_unprotect(protected, key_password), chain))
        elif tag == 2:
            trusted.append(reader.certificate(version))
        else:
            raise ValueError(f"unknown JKS entry type {tag}")
    if password is not None:
        body = data[: reader.at]
        expected = hashlib.sha1(_utf16(password) + b"Mighty Aphrodite" + body).digest()
        if reader.take(20) != expected:
            raise ValueError("wrong password or a damaged file")
    return trusted, keys


def _utf16(password: bytes) -> bytes:
    return password.decode().encode("utf-16-be")


def _unprotect(protected: bytes, password: bytes) -> bytes:
    """The JDK's KeyProtector: an EncryptedPrivateKeyInfo with a SHA-1 keystream."""
    info = _Der(protected).sequence()
    algorithm = _Der(info.element(0x30)).element(0x06)
    if b"\x06" + bytes([len(algorithm)]) + algorithm != _JKS_KEY_PROTECTOR:
        raise ValueError("a private key protected otherwise than by the JDK's key protector")
    encrypted = info.element(0x04)
    salt, body, check = encrypted[:20], encrypted[20:-20], encrypted[-20:]
    secret = _utf16(password)
    stream = b""
    digest = salt
    while len(stream) < len(body):
        digest = hashlib.sha1(secret + digest).digest()
        stream += digest
    plain = bytes(a ^ b for a, b in zip(body, stream, strict=False))
    if hashlib.sha1(secret + plain).digest() != check:
        raise ValueError("wrong private key password")
    return plain


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ValueError("a truncated JKS key store")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def utf(self) -> bytes:
        (size,) = struct.unpack(">H", self.take(2))
        return self.take(size)

    def block(self) -> bytes:
        (size,) = struct.unpack(">I", self.take(4))
        return self.take(size)

    def certificate(self, version: int) -> bytes:
        if version == 2:
            kind = self.utf()
            if kind != b"X.509":
                raise ValueError(f"a {kind.decode(errors='replace')} certificate, not X.509")
        return self.block()


class _Der:
    """Just enough DER to read an EncryptedPrivateKeyInfo."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def element(self, tag: int) -> bytes:
        if self.at >= len(self.data) or self.data[self.at] != tag:
            raise ValueError("an unreadable protected private key")
        size = self.data[self.at + 1]
        start = self.at + 2
        if size & 0x80:
            count = size & 0x7F
            size = int.from_bytes(self.data[start : start + count], "big")
            start += count
        self.at = start + size
        return self.data[start : self.at]

    def sequence(self) -> _Der:
        return _Der(self.element(0x30))
