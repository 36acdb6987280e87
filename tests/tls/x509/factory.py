"""Test PKI: certificates built with cryptography's builder, plus a DER tree editor for malformed ones.

The builder makes well-formed certificates with every knob the validator cares about; `DerNode` lets a
test take such a certificate apart, change one field (an encoding the builder would never emit), put it
back together and re-sign it, so each refusal can be shown on an otherwise valid certificate.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tls.x509.der import decode_oid

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
KeyType = Literal["p256", "p384", "p521", "rsa2048", "rsa3072", "ed25519", "rsa1024"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_CURVES: dict[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}


def new_key(kind: KeyType = "p256") -> PrivateKey:
    if kind in _CURVES:
        return ec.generate_private_key(_CURVES[kind])
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(65537, int(kind.removeprefix("rsa")))


@cache
def shared_key(kind: KeyType, index: int = 0) -> PrivateKey:
    """Keys are slow to make (RSA especially); tests that only need *a* key of a type share these."""
    return new_key(kind)


@dataclass
class Issued:
    certificate: x509.Certificate
    key: PrivateKey
    name: x509.Name

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class Spec:
    """What to put in a certificate; defaults make a valid TLS server leaf."""

    subject: str | x509.Name = "leaf.example.com"
    ca: bool | None = False  # None: no basicConstraints at all
    path_length: int | None = None
    bc_critical: bool = True
    key_usage: Sequence[str] | None = ("digital_signature",)
    eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.SERVER_AUTH,)
    eku_critical: bool = False
    dns: Sequence[str] = ("leaf.example.com",)
    ips: Sequence[str] = ()
    emails: Sequence[str] = ()
    san: bool = True
    aki: bool = True
    ski: bool = True
    not_before: datetime = NOW - timedelta(days=30)
    not_after: datetime = NOW + timedelta(days=30)
    serial: int = 0x1234
    permitted: Sequence[x509.GeneralName] | None = None
    excluded: Sequence[x509.GeneralName] | None = None
    extra: Sequence[tuple[x509.ExtensionType, bool]] = field(default_factory=tuple)
    hash: hashes.HashAlgorithm | None = field(default_factory=hashes.SHA256)
    pss: bool = False


CA_USAGE = ("key_cert_sign", "crl_sign")
_KU_FIELDS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def ca_spec(subject: str = "Test CA", **changes: object) -> Spec:
    values: dict[str, object] = {
        "subject": subject,
        "ca": True,
        "key_usage": CA_USAGE,
        "eku": None,
        "dns": (),
        "san": False,
    }
    values.update(changes)
    return Spec(**values)  # type: ignore[arg-type]


def issue(spec: Spec, *, issuer: Issued | None = None, key: PrivateKey | None = None) -> Issued:
    """Build and sign a certificate; `issuer=None` makes it self-signed."""
    key = key or shared_key("p256", 1 if spec.ca else 0)
    subject = spec.subject if isinstance(spec.subject, x509.Name) else name(spec.subject)
    issuer_name = issuer.name if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(spec.serial)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    if spec.ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(spec.ca, spec.path_length), critical=spec.bc_critical)
    if spec.key_usage is not None:
        flags = {f: f in spec.key_usage for f in _KU_FIELDS}
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    if spec.eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(spec.eku)), critical=spec.eku_critical)
    if spec.san:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in spec.ips]
        names += [x509.RFC822Name(e) for e in spec.emails]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if spec.ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if spec.aki and issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if spec.permitted is not None or spec.excluded is not None:
        builder = builder.add_extension(
            x509.NameConstraints(
                permitted_subtrees=list(spec.permitted) if spec.permitted is not None else None,
                excluded_subtrees=list(spec.excluded) if spec.excluded is not None else None,
            ),
            critical=True,
        )
    for extension, critical in spec.extra:
        builder = builder.add_extension(extension, critical=critical)
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else spec.hash
    if spec.pss and isinstance(signing_key, rsa.RSAPrivateKey):
        pss_hash = spec.hash or hashes.SHA256()
        pss = padding.PSS(mgf=padding.MGF1(pss_hash), salt_length=pss_hash.digest_size)
        certificate = builder.sign(signing_key, pss_hash, rsa_padding=pss)  # type: ignore[arg-type]
    else:
        certificate = builder.sign(signing_key, algorithm)  # type: ignore[arg-type]
    return Issued(certificate, key, subject)


@dataclass
class Pki:
    """root -> intermediate -> leaf, all valid at NOW, with the DER lists `validate` takes."""

    root: Issued
    intermediate: Issued
    leaf: Issued

    @property
    def chain(self) -> list[bytes]:
        return [self.leaf.der, self.intermediate.der]

    @property
    def anchors(self) -> list[bytes]:
        return [self.root.der]


def make_pki(key_type: KeyType = "p256", leaf: Spec | None = None, intermediate: Spec | None = None) -> Pki:
    root = issue(ca_spec("Test Root"), key=shared_key(key_type, 10))
    inter = issue(intermediate or ca_spec("Test Intermediate"), issuer=root, key=shared_key(key_type, 11))
    end = issue(leaf or Spec(), issuer=inter, key=shared_key(key_type, 12))
    return Pki(root, inter, end)


# --- DER tree editing --------------------------------------------------------------------------------


@dataclass
class DerNode:
    """One TLV; constructed values hold children, primitive ones their content octets."""

    tag: int
    children: list[DerNode] | None = None
    content: bytes = b""
    long_length: bool = False  # emit a non-minimal (long-form) length: a BER-only encoding

    @classmethod
    def parse(cls, data: bytes) -> DerNode:
        node, end = cls._parse_at(data, 0)
        assert end == len(data)
        return node

    @classmethod
    def _parse_at(cls, data: bytes, pos: int) -> tuple[DerNode, int]:
        tag = data[pos]
        length = data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        end = pos + length
        if tag & 0x20:
            children = []
            while pos < end:
                child, pos = cls._parse_at(data, pos)
                children.append(child)
            return cls(tag, children), end
        return cls(tag, None, data[pos:end]), end

    def encode(self) -> bytes:
        body = b"".join(c.encode() for c in self.children) if self.children is not None else self.content
        length = encode_length(len(body))
        if self.long_length and len(length) == 1:
            length = b"\x81" + length
        return bytes([self.tag]) + length + body

    def __getitem__(self, index: int) -> DerNode:
        assert self.children is not None
        return self.children[index]


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


def tbs_fields(tree: DerNode) -> list[DerNode]:
    """The TBSCertificate's fields (with the [0] version first when present)."""
    children = tree[0].children
    assert children is not None
    return children


def extension_nodes(tree: DerNode) -> list[DerNode]:
    extensions = tbs_fields(tree)[-1]
    assert extensions.tag == 0xA3
    return extensions[0].children or []


def find_extension(tree: DerNode, dotted: str) -> DerNode:
    for node in extension_nodes(tree):
        oid = node[0].content
        if decode_oid(oid, 0, len(oid)) == dotted:
            return node
    raise KeyError(dotted)


def resign(tree: DerNode, key: PrivateKey, digest: hashes.HashAlgorithm | None = None) -> bytes:
    """Re-encode `tree` and replace its signature with a fresh one by `key` over the new TBS."""
    tbs = tree[0].encode()
    digest = digest or hashes.SHA256()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(tbs, ec.ECDSA(digest))
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), digest)
    else:
        signature = key.sign(tbs)
    assert tree.children is not None
    tree.children[2] = DerNode(0x03, None, b"\x00" + signature)
    return tree.encode()


def edited(issued: Issued, signer: PrivateKey, change: object) -> bytes:
    """Parse `issued`, apply `change(tree)`, re-sign with `signer`: one malformed but signed certificate."""
    tree = DerNode.parse(issued.der)
    assert callable(change)
    change(tree)
    return resign(tree, signer)
