"""The X.509 DER walker (tls/x509/der.py `check_der`): what every certificate passes before anything reads it.

What must hold: only X509Error escapes; what it accepts is strict DER, so re-encoding the tree it walked (each
header in its one minimal form, constructed values from their children) gives back exactly the input; every
OBJECT IDENTIFIER in it decodes (`decode_oid`) to arcs that encode back to the same content octets.
"""

from __future__ import annotations

from fuzz.errors import require
from tls.x509.der import CONSTRUCTED, TAG_OID, check_der, children, decode_oid, read_single
from tls.x509.errors import X509Error


def _header(tag: int, length: int) -> bytes:
    if length < 0x80:
        return bytes((tag, length))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets


def encode_oid(dotted: str) -> bytes:
    """The content octets of an OBJECT IDENTIFIER (our own encoder: what decode_oid must agree with)."""
    arcs = [int(arc) for arc in dotted.split(".")]
    out = bytearray()
    for arc in (40 * arcs[0] + arcs[1], *arcs[2:]):
        group = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            group.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out += bytes(reversed(group))
    return bytes(out)


def _encode(data: bytes, tag: int, start: int, end: int) -> bytes:
    """The DER encoding of the value whose content is data[start:end], rebuilt from its parts."""
    if tag & CONSTRUCTED:
        content = b"".join(_encode(data, child, cstart, cend) for child, _, cstart, cend in
                           children(data, start, end))
    else:
        content = data[start:end]
        if tag == TAG_OID:
            require(encode_oid(decode_oid(data, start, end)) == content, "OID does not round-trip")
    return _header(tag, len(content)) + content


def fuzz_one(data: bytes) -> None:
    try:
        check_der(data)
    except X509Error:
        return
    tag, start, end = read_single(data)
    require(_encode(data, tag, start, end) == data, "accepted DER does not re-encode to itself")


def seeds() -> dict[str, bytes]:
    from fuzz.fixtures import bench_chain, boot  # noqa: PLC0415 (certificates are made only for the seeds)

    chain = bench_chain()
    return {
        "boot-ca": boot().pki.ca_der,
        "boot-client": boot().pki.client.cert_der,
        "ed25519-leaf": chain.server.der,
        "set-of": bytes.fromhex("3108020101020102020103"),
        "oid": bytes.fromhex("0603551d0e"),
    }
