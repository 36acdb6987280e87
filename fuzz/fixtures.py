"""The certificates and keys the TLS and X.509 targets use, made the same way in every process.

The boot PKI is the appliance's own (`appliance.pki.generate`, a P-256 CA with pathlen 0 and its server,
client and web leaves, the server roles with RSA alternates), drawn from a fixed stream: its keys, serials
and names are the same in every process, so a committed seed that carries a leaf still chains to the CA
made at replay (OpenSSL draws the ECDSA signature nonces, so the signature bytes differ, and only they; the
RSA alternates' key is OpenSSL's too, so no seed carries an RSA leaf). A second, deterministic chain (root,
intermediate, leaves, all Ed25519, built with bench.certs) gives the path builder an intermediate to find.
Made once per process: the targets call these for every input.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from appliance import pki
from appliance.ours_tls import OursFactory
from appliance.sources import Sources
from appliance.validation import BootCaValidator
from bench import certs
from fuzz.sources import NOW, Stream, wall
from tls.signatures import PrivateKey

SECRET = b"FUZZ-SECRET-released-only-after-authentication"
"""What the engine targets send as the appliance sends the wallet key: only once the peer is authenticated."""


def spki(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a DER certificate, as `cryptography` encodes it: keys compare by this."""
    from cryptography import x509  # noqa: PLC0415 (kept local: only the fixtures need the full parser)

    public = x509.load_der_x509_certificate(der).public_key()
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class BootFixture:
    pki: pki.BootPKI
    random: Stream
    """The engines' random source; every engine target resets it before each input."""
    factory: OursFactory
    """The appliance's own engine factory (appliance/ours_tls.py), over `random` and the fixed clock."""
    validator: BootCaValidator
    """The vault's check (appliance/validation.py) with the boot CA as the only anchor."""
    keys: dict[bytes, PrivateKey]
    """Every leaf private key we hold, by the leaf's SubjectPublicKeyInfo: who can prove possession."""
    client_spki: bytes
    server_spkis: frozenset[bytes]


@cache
def boot() -> BootFixture:
    stream = Stream(b"pinata-fuzz-boot-pki")
    made = pki.generate(NOW, stream)
    engine_random = Stream(b"pinata-fuzz-engine")
    sources = Sources(wall=wall, monotonic=wall, random=engine_random)
    keys: dict[bytes, PrivateKey] = {}
    servers: set[bytes] = set()
    for identity in (made.server, made.web):
        for certified in (identity, *identity.alternates):
            keys[spki(certified.cert_der)] = certified.key
            servers.add(spki(certified.cert_der))
    client = spki(made.client.cert_der)
    keys[client] = made.client.key
    return BootFixture(made, engine_random, OursFactory(made.ca_der, sources), BootCaValidator(made.ca_der), keys,
                       client, frozenset(servers))


@dataclass(frozen=True)
class BenchChain:
    root: certs.Issued
    intermediate: certs.Issued
    server: certs.Issued
    client: certs.Issued


def _ed25519(index: int) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(Stream(b"pinata-fuzz-ed25519")(32 + index)[-32:])


@cache
def bench_chain() -> BenchChain:
    """root -> intermediate -> (server leaf, client leaf), Ed25519 throughout: byte-identical in every process."""
    root = certs.issue(certs.ca_spec("Fuzz Root"), key=_ed25519(0))
    intermediate = certs.issue(certs.ca_spec("Fuzz Intermediate"), issuer=root, key=_ed25519(1))
    server = certs.issue(certs.Spec(subject="server.fuzz.example", dns=("server.fuzz.example",)),
                         issuer=intermediate, key=_ed25519(2))
    client = certs.issue(certs.Spec(subject="client.fuzz.example", dns=(), san=False,
                                    eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)), issuer=intermediate, key=_ed25519(3))
    return BenchChain(root, intermediate, server, client)
