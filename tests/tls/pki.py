"""Test PKI: a CA and leaves with the extensions the real validator requires (as the appliance's boot CA)."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tls.config import ClientAuth, ClientAuthMode, ClientConfig, ServerConfig
from tls.signatures import PrivateKey

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def make_key(kind: str) -> PrivateKey:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(kind)


def _sign_hash(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def make_ca(name: str = "Test CA", kind: str = "p256", *, not_before: datetime | None = None,
            not_after: datetime | None = None, issuer: Issued | None = None, path_length: int | None = 1) -> Issued:
    key = make_key(kind)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(int.from_bytes(os.urandom(8), "big") >> 1)
               .not_valid_before(not_before or NOW - timedelta(days=30))
               .not_valid_after(not_after or NOW + timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    cert = builder.sign(signer_key, _sign_hash(signer_key))
    return Issued(cert, key)


def make_leaf(ca: Issued, *, kind: str = "p256", server: bool = True, names: tuple[str, ...] = ("localhost",),
              not_before: datetime | None = None, not_after: datetime | None = None) -> Issued:
    key = make_key(kind)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "client")])
    eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(ca.cert.subject)
               .public_key(key.public_key())
               .serial_number(int.from_bytes(os.urandom(8), "big") >> 1)
               .not_valid_before(not_before or NOW - timedelta(days=1))
               .not_valid_after(not_after or NOW + timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=False, crl_sign=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                              critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                        critical=False)
    cert = builder.sign(ca.key, _sign_hash(ca.key))
    return Issued(cert, key)


@functools.cache
def ca(kind: str = "p256") -> Issued:
    return make_ca(f"Test CA {kind}", kind)


@functools.cache
def server_leaf(kind: str = "p256") -> Issued:
    return make_leaf(ca(), kind=kind)


@functools.cache
def client_leaf(kind: str = "p256") -> Issued:
    return make_leaf(ca(), kind=kind, server=False, names=())


def counter_random(seed: int = 1) -> Callable[[int], bytes]:
    """A deterministic random source: tests reproduce byte for byte."""
    state = {"n": 0}

    def random(n: int) -> bytes:
        state["n"] += 1
        out = b""
        block = 0
        while len(out) < n:
            out += hashlib.sha256(f"{seed}:{state['n']}:{block}".encode()).digest()
            block += 1
        return out[:n]

    return random


def server_config(kind: str = "p256", *, client_auth: ClientAuthMode | None = None, **kwargs: Any) -> ServerConfig:
    leaf = server_leaf(kind)
    auth = ClientAuth(client_auth, (ca().der,)) if client_auth is not None else None
    return ServerConfig(chain=(leaf.der, ca().der), key=leaf.key, random=os.urandom, time=lambda: NOW,
                        client_auth=auth, **kwargs)


def client_config(*, cert_kind: str | None = None, **kwargs: Any) -> ClientConfig:
    base: dict[str, Any] = {"anchors": (ca().der,), "server_name": "localhost"}
    if cert_kind is not None:
        leaf = client_leaf(cert_kind)
        base["chain"] = (leaf.der,)
        base["key"] = leaf.key
    base.update(kwargs)
    return ClientConfig(random=os.urandom, time=lambda: NOW, **base)
