"""Test PKI: the shared certificate builder (bench/certs.py), plus a DER tree editor for malformed ones.

The builder makes well-formed certificates with every knob the validator cares about; `DerNode` lets a
test take such a certificate apart, change one field (an encoding the builder would never emit), put it
back together and re-sign it, so each refusal can be shown on an otherwise valid certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from bench.certs import (
    CA_USAGE,
    NOW,
    Issued,
    KeyType,
    Pki,
    PrivateKey,
    Spec,
    ca_spec,
    issue,
    make_pki,
    name,
    new_key,
    shared_key,
)
from tls.x509.der import decode_oid

__all__ = [
    "CA_USAGE", "NOW", "DerNode", "Issued", "KeyType", "Pki", "PrivateKey", "Spec", "ca_spec", "edited",
    "encode_length", "extension_nodes", "find_extension", "issue", "make_pki", "name", "new_key", "resign",
    "shared_key", "tbs_fields", "tlv",
]


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
