"""Test PKI: a CA and leaves with the extensions the real validator requires (as the appliance's boot CA),
built with the shared builder (bench/certs.py)."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.x509.oid import ExtendedKeyUsageOID

from bench.certs import Issued, KeyType, Spec, ca_spec, issue, new_key
from tls.config import ClientAuth, ClientAuthMode, ClientConfig, ServerConfig
from tls.signatures import PrivateKey

__all__ = ["NOW", "Issued", "ca", "client_config", "client_leaf", "counter_random", "make_ca", "make_key", "make_leaf",
           "server_config", "server_leaf"]

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def make_key(kind: str) -> PrivateKey:
    kinds: dict[str, KeyType] = {"p256": "p256", "p384": "p384", "ed25519": "ed25519", "rsa": "rsa2048"}
    if kind not in kinds:
        raise ValueError(kind)
    return new_key(kinds[kind])


def make_ca(name: str = "Test CA", kind: str = "p256", *, not_before: datetime | None = None,
            not_after: datetime | None = None, issuer: Issued | None = None, path_length: int | None = 1) -> Issued:
    spec = ca_spec(name, path_length=path_length, serial=None, not_before=not_before or NOW - timedelta(days=30),
                   not_after=not_after or NOW + timedelta(days=3650))
    return issue(spec, issuer=issuer, key=make_key(kind))


def make_leaf(ca: Issued, *, kind: str = "p256", server: bool = True, names: tuple[str, ...] = ("localhost",),
              not_before: datetime | None = None, not_after: datetime | None = None) -> Issued:
    spec = Spec(names[0] if names else "client", dns=names, san=bool(names), ski=False, serial=None,
                eku=(ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH,),
                not_before=not_before or NOW - timedelta(days=1), not_after=not_after or NOW + timedelta(days=365))
    return issue(spec, issuer=ca, key=make_key(kind))


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
