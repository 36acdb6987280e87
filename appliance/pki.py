"""The boot PKI: a fresh CA and three leaves at every start (DESIGN.md, "Boot PKI").

Why fresh at every boot: the CA key is the only thing that can mint a certificate the vault accepts, so
it never touches the disk. It is needed only to issue the leaves: `begin` returns a `BootPKI` (CA key
included) that the composition root holds just long enough to issue the ECDSA leaves (and, in test mode, to
export them), then keeps only `BootPKI.issued()`, which has the CA certificate and no CA key (rule 5).
ECDSA P-256 because generating four keys must not slow the boot (it takes milliseconds) and most TLS
peers speak it. Keys and serials come from the random source the composition root passes
(`appliance.sources`); OpenSSL still draws the ECDSA nonces of the signatures itself.

Each server role (10000, 443) also has an RSA-2048 leaf beside its ECDSA one (`Identity.alternates`), for
clients that verify RSA signatures only (many scanners and older tools); the engine picks per ClientHello and
prefers ECDSA. One RSA key serves both RSA leaves. Generating it is the one slow step of the boot PKI: 15-130
ms on the host (the spread is the prime search), 0.13-1.42 s in the VM (median 0.45 s, 16 boots), a sixth
of the boot and most of its variance. So the appliance makes it after ready (`appliance.alternates`), and
the CA key waits for it in a `PendingAlternates`, which can issue those two leaves once and nothing else;
`generate` does it all at once for tests and tools. OpenSSL draws that key from its own generator: a prime
search in Python from our source took 160-720 ms on the host. Its leaves' serials come from our source.

The certificates are written by `appliance.certificate_der` and signed here with the CA key; the running
appliance keeps their DER. `cryptography.x509` is never imported on the boot path (issue 17: it and what it
loads were a fifth of the boot's imports); `Identity.certificate` parses the DER with it for tests and tools.

- CA: BasicConstraints critical CA:TRUE pathlen:0, KeyUsage critical keyCertSign|cRLSign, its key identifier.
- server (10000): CA:FALSE, digitalSignature, EKU serverAuth, the CA's key identifier (as for every leaf).
- client (10001, 10002, where the appliance is the TLS client): CA:FALSE, digitalSignature, EKU clientAuth.
- web (443): like server, plus the SAN the browser checks.
"""

from __future__ import annotations

import base64
import datetime
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from appliance import certificate_der as der
from appliance.sources import RandomSource
from tls.x509 import oids
from tls.x509.peek import peek_certificate

if TYPE_CHECKING:
    from cryptography import x509

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=3650)
BACKDATE = datetime.timedelta(minutes=5)  # tolerate a peer clock slightly behind ours
CA_COMMON_NAME = "Piñata boot CA"
WEB_NAMES = ("pinata.local", "localhost")
WEB_ADDRESSES = ("127.0.0.1",)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
RSA_KEY_BITS = 2048
"""The RSA leaves' key size: the smallest every client accepts; larger keys cost more at boot and per
handshake."""
RSA_PUBLIC_EXPONENT = 65537
KEY_DRAW_BYTES = 40
"""A P-256 key is drawn as 64 bits more than the order's 256 and reduced (FIPS 186-4 B.4.1, "extra random
bits"): the bias of the reduction is then below 2**-64, with no rejection loop."""
_SIGNATURE = ec.ECDSA(hashes.SHA256())
_PEM_LINE = 64  # base64 characters per line of PEM armour (RFC 7468 2)


class _Certified:
    """What both kinds of identity give the engines and the test export: the certificate and key encoded."""

    cert_der: bytes
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def certificate(self) -> x509.Certificate:
        """The certificate parsed by cryptography, for tests and tools: the boot never asks (see _parsed)."""
        return _parsed(self.cert_der)

    @property
    def cert_pem(self) -> bytes:
        return pem(self.cert_der)

    @property
    def key_pem(self) -> bytes:
        """PKCS #8 PEM, for tests and the test-mode export. `serialization` is imported here, not at the top: its
        `ssh` module and what that loads cost about 50 ms of the VM's boot (issue 17), and the boot never asks."""
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - never on the boot path

        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


@dataclass(frozen=True)
class RsaIdentity(_Certified):
    """A server role's RSA leaf and its key: the alternate certificate for clients that verify RSA only."""

    cert_der: bytes
    key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class Identity(_Certified):
    """A leaf certificate and its key, as the TLS engines take them; `alternates` are further certificates for
    the same role (a server role's RSA leaf), offered to clients that cannot verify this one."""

    cert_der: bytes
    key: ec.EllipticCurvePrivateKey
    alternates: tuple[RsaIdentity, ...] = ()


@dataclass(frozen=True)
class IssuedPKI:
    """What the running appliance keeps of the boot PKI: the CA's certificate (the one trust anchor) and the
    three leaves with their keys. No CA key: nothing left in the process can mint a certificate."""

    ca_der: bytes
    server: Identity
    client: Identity
    web: Identity

    @property
    def ca_pem(self) -> bytes:
        return pem(self.ca_der)

    def with_alternates(self, alternates: Alternates) -> IssuedPKI:
        """The same leaves, each server role with its RSA leaf as alternate."""
        return _with_alternates(self, alternates)

    @property
    def ca_certificate(self) -> x509.Certificate:
        """For tests and tools, like `Identity.certificate`."""
        return _parsed(self.ca_der)


@dataclass(frozen=True)
class BootPKI:
    """The PKI as issued, CA key included: for the boot (until the leaves exist), test export, and tests."""

    ca: Identity
    server: Identity
    client: Identity
    web: Identity

    @property
    def ca_der(self) -> bytes:
        return self.ca.cert_der

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem

    def issued(self) -> IssuedPKI:
        """The part that outlives the boot; the caller drops this object (and with it the CA key)."""
        return IssuedPKI(self.ca.cert_der, self.server, self.client, self.web)

    def with_alternates(self, alternates: Alternates) -> BootPKI:
        """As `IssuedPKI.with_alternates`."""
        return _with_alternates(self, alternates)


_Leaves = TypeVar("_Leaves", IssuedPKI, BootPKI)


def _with_alternates(pki: _Leaves, alternates: Alternates) -> _Leaves:
    """`pki` with each server role's RSA leaf after the alternates it has."""
    server = replace(pki.server, alternates=(*pki.server.alternates, alternates.server))
    web = replace(pki.web, alternates=(*pki.web.alternates, alternates.web))
    return replace(pki, server=server, web=web)


def pem(cert_der: bytes) -> bytes:
    """The PEM armour of a certificate (RFC 7468: base64 in lines of 64, BEGIN/END CERTIFICATE)."""
    text = base64.b64encode(cert_der)
    lines = b"".join(text[at : at + _PEM_LINE] + b"\n" for at in range(0, len(text), _PEM_LINE))
    return b"-----BEGIN CERTIFICATE-----\n" + lines + b"-----END CERTIFICATE-----\n"


def _parsed(cert_der: bytes) -> x509.Certificate:
    """cryptography's view of a certificate. Imported here, not at the top: `cryptography.x509` (with the
    `email` and `calendar` it loads) cost a fifth of the boot's imports in the VM, and only tests use this."""
    from cryptography import x509  # noqa: PLC0415 - never on the boot path (issue 17)

    return x509.load_der_x509_certificate(cert_der)


def _draw(random: RandomSource, size: int) -> int:
    """`size` bytes from `random` as an integer; a source that gives fewer is refused (a short read would
    silently make a weaker key or a guessable serial)."""
    data = random(size)
    if len(data) != size:
        raise ValueError(f"the random source gave {len(data)} bytes, not {size}")
    return int.from_bytes(data, "big")


def _serial(random: RandomSource) -> int:
    return _draw(random, 16) >> 1  # positive, at most 127 bits


def new_key(random: RandomSource) -> ec.EllipticCurvePrivateKey:
    """A P-256 key from `random` (see KEY_DRAW_BYTES): in [1, order - 1] whatever the bytes."""
    return ec.derive_private_key(_draw(random, KEY_DRAW_BYTES) % (P256_ORDER - 1) + 1, ec.SECP256R1())


def _make_ca(now: datetime.datetime, random: RandomSource) -> Identity:
    key = new_key(random)
    spki = der.subject_public_key_info(key.public_key())
    tbs = der.tbs_certificate(der.TbsCertificate(
        issuer=CA_COMMON_NAME, subject=CA_COMMON_NAME, serial=_serial(random),
        not_before=now - BACKDATE, not_after=now + CA_VALIDITY, spki=spki,
        extensions=(
            der.basic_constraints(ca=True),
            der.key_usage(der.KEY_CERT_SIGN, der.CRL_SIGN),
            der.subject_key_identifier(spki),
        ),
    ))
    return Identity(der.certificate(tbs, key.sign(tbs, _SIGNATURE)), key)


def make_leaf(
    ca: Identity,
    common_name: str,
    usage: str,
    now: datetime.datetime,
    random: RandomSource,
    *,
    san: tuple[str, ...] | None = None,
) -> Identity:
    """A leaf issued directly by `ca` (the boot CA: its name is CA_COMMON_NAME), for a fresh P-256 key from
    `random`. `usage` is the EKU's dotted OID (`tls.x509.oids.EKU_SERVER_AUTH`, ...); `san` the DNS names and IP
    addresses of a SubjectAltName, in order (`certificate_der.subject_alt_name`), or None for none."""
    return _leaf(_Issuer.of(ca), common_name, usage, now, random, san=san)


@dataclass(frozen=True)
class _Issuer:
    """The boot CA as it signs leaves: its key and the AuthorityKeyIdentifier every leaf carries, checked and
    computed once for all the leaves of a boot."""

    key: ec.EllipticCurvePrivateKey
    key_id: der.Extension

    @classmethod
    def of(cls, ca: Identity) -> _Issuer:
        """The issuer name a leaf carries is the boot CA's: a leaf of any other CA would carry its signature
        under the wrong name, so another CA is refused."""
        if peek_certificate(ca.cert_der).subject != der.name(CA_COMMON_NAME):
            raise ValueError("leaves are issued by the boot CA only (its subject is the issuer name they carry)")
        return cls(ca.key, der.authority_key_identifier(der.subject_public_key_info(ca.key.public_key())))


def _leaf(issuer: _Issuer, common_name: str, usage: str, now: datetime.datetime, random: RandomSource, *,
          san: tuple[str, ...] | None) -> Identity:
    key = new_key(random)
    cert_der = _issue(issuer, common_name, usage, now, _serial(random), public_key=key.public_key(), san=san)
    return Identity(cert_der, key)


def _issue(
    issuer: _Issuer,
    common_name: str,
    usage: str,
    now: datetime.datetime,
    serial: int,
    *,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    san: tuple[str, ...] | None,
) -> bytes:
    """The DER of the leaf certificate for `public_key`, signed by the boot CA (see the module docstring for its
    extensions)."""
    extensions: tuple[der.Extension, ...] = (
        der.basic_constraints(ca=False),
        der.key_usage(der.DIGITAL_SIGNATURE),
        der.extended_key_usage((usage,)),
        issuer.key_id,
    )
    if san is not None:
        extensions += (der.subject_alt_name(san),)
    tbs = der.tbs_certificate(der.TbsCertificate(
        issuer=CA_COMMON_NAME, subject=common_name, serial=serial,
        not_before=now - BACKDATE, not_after=now + LEAF_VALIDITY, spki=der.subject_public_key_info(public_key),
        extensions=extensions,
    ))
    return der.certificate(tbs, issuer.key.sign(tbs, _SIGNATURE))


def generate(now: datetime.datetime, random: RandomSource, web_names: tuple[str, ...] = WEB_NAMES) -> BootPKI:
    """The whole PKI at once, RSA leaves included, for tests and tools. The appliance's boot uses `begin` and
    issues the RSA leaves after ready, or (with the stdlib engine, which loads every certificate into
    OpenSSL once) right away."""
    boot, pending = begin(now, random, web_names)
    return boot.with_alternates(pending.issue(new_rsa_key()))


def begin(now: datetime.datetime, random: RandomSource,
          web_names: tuple[str, ...] = WEB_NAMES) -> tuple[BootPKI, PendingAlternates]:
    """The CA and the ECDSA leaves (milliseconds), and the one-shot capability that issues the server roles'
    RSA leaves once their key exists (`PendingAlternates`): that key is the slow step of the boot PKI, so
    the boot makes it after ready (`appliance.alternates`). Everything drawn from `random` is drawn here, on
    the caller's thread."""
    ca = _make_ca(now, random)
    issuer = _Issuer.of(ca)
    web_san = web_names + WEB_ADDRESSES

    def server_role(common_name: str, san: tuple[str, ...] | None) -> tuple[Identity, _RsaRole]:
        """The role's ECDSA leaf, then its RSA leaf's serial: the order in which `random` was always drawn
        (a deterministic source gives the same PKI as before, which the fuzzer's committed seeds carry)."""
        leaf = _leaf(issuer, common_name, oids.EKU_SERVER_AUTH, now, random, san=san)
        return leaf, _RsaRole(common_name, san, _serial(random))

    server, server_rsa = server_role("Piñata mutual-TLS server", None)
    client = _leaf(issuer, "Piñata client", oids.EKU_CLIENT_AUTH, now, random, san=None)
    web, web_rsa = server_role(web_names[0], web_san)
    return BootPKI(ca=ca, server=server, client=client, web=web), PendingAlternates(issuer, now, (server_rsa, web_rsa))


def new_rsa_key() -> rsa.RSAPrivateKey:
    """The server roles' RSA key (one for both RSA leaves): OpenSSL's prime search, from its own generator
    (see the module docstring). It releases the GIL, so it can run in a thread beside the event loop."""
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)


@dataclass(frozen=True)
class _RsaRole:
    """What an RSA leaf of a server role carries beside the key: the role's name and SAN as its ECDSA leaf
    has them, and a serial drawn with the other certificates' (so no thread but the boot's draws randomness)."""

    common_name: str
    san: tuple[str, ...] | None
    serial: int


@dataclass(frozen=True)
class Alternates:
    """The server roles' RSA leaves, for clients that verify RSA signatures only."""

    server: RsaIdentity
    web: RsaIdentity


class SpentError(Exception):
    """A `PendingAlternates` was asked to issue again: it can issue once, then holds no CA key."""


class PendingAlternates:
    """The boot CA's key, kept for one job after the other leaves exist: signing the two RSA leaves.

    Why it exists (DESIGN.md rule 5, "the CA private key is dropped once the leaves are issued"): the RSA key
    takes 0.1-1.4 s to make in the VM, so the boot issues those two leaves after ready instead of before. Until
    then this object is the only holder of the CA key, and it can do nothing but issue these two leaves, for
    the names fixed in `begin`. `issue` or `discard` drops the key; afterwards nothing in the process can
    mint a certificate. The appliance holds it only in the task that makes the RSA key
    (`appliance.alternates.start_issuing`), never as an attribute of anything the endpoints reach."""

    def __init__(self, issuer: _Issuer, now: datetime.datetime, roles: tuple[_RsaRole, _RsaRole]) -> None:
        self._issuer: _Issuer | None = issuer
        self._now = now
        self._roles = roles

    @property
    def spent(self) -> bool:
        return self._issuer is None

    def issue(self, key: rsa.RSAPrivateKey) -> Alternates:
        """Both RSA leaves for `key`, signed by the boot CA; then the CA key is dropped, whether they were
        issued or `key` was refused (anything but the RSA-2048, e = 65537 key the boot makes)."""
        issuer = self._issuer
        if issuer is None:
            raise SpentError("the RSA leaves were issued (or discarded) already: the CA key is gone")
        self._issuer = None
        if key.key_size != RSA_KEY_BITS or key.public_key().public_numbers().e != RSA_PUBLIC_EXPONENT:
            raise ValueError(f"the RSA leaves are for an RSA-{RSA_KEY_BITS} key with e = {RSA_PUBLIC_EXPONENT}")
        server, web = (
            RsaIdentity(_issue(issuer, role.common_name, oids.EKU_SERVER_AUTH, self._now, role.serial,
                               public_key=key.public_key(), san=role.san), key)
            for role in self._roles
        )
        return Alternates(server, web)

    def discard(self) -> None:
        """Drop the CA key without issuing (the RSA key could not be made, or the appliance is stopping)."""
        self._issuer = None


def export(pki: BootPKI, directory: Path) -> list[Path]:
    """Test mode only (`--test-pki DIR`): write every key and certificate, the CA key included, so tests
    can build good and bad chains. The caller refuses this in a production image.

    Each file appears whole or not at all (written beside it, then renamed): whoever watches the directory
    (the test image's init copies the files out as soon as they all exist) never reads a half-written key."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for label, identity in (("ca", pki.ca), ("server", pki.server), ("client", pki.client), ("web", pki.web)):
        cert_path = directory / f"{label}.pem"
        key_path = directory / f"{label}.key"
        _write_whole(cert_path, identity.cert_pem, 0o644)
        _write_whole(key_path, identity.key_pem, 0o600)
        written += [cert_path, key_path]
    return written


def _write_whole(path: Path, data: bytes, mode: int) -> None:
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)
