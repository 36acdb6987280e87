"""peek_certificate: the few byte ranges of a certificate that path building compares, without parsing it.

Why its own module: path building reads this summary of every candidate before deciding which are worth a
full parse (tls.x509.parse), and the appliance's boot needs it for its own CA (appliance.pki); neither should
have to load the parser, the model and the key decoders to get it. It needs only the DER reader.
"""

from __future__ import annotations

from typing import NamedTuple

from tls.x509 import oids
from tls.x509.der import (
    TAG_BIT_STRING,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    children,
    encode_oid,
    only_child,
    read_header,
    read_single,
)
from tls.x509.errors import X509Error, decode_error
from tls.x509.limits import MAX_EXTENSIONS

TAG_VERSION = 0xA0  # TBSCertificate's [0] EXPLICIT version
TAG_EXTENSIONS = 0xA3  # and its [3] EXPLICIT extensions


class CertificateSummary(NamedTuple):
    """What path building needs of a certificate before it is worth parsing: the exact name encodings, the
    SubjectPublicKeyInfo bytes, the key identifiers, and what its signature covers. Read by
    `peek_certificate` (below) without a schema decode, from the same byte ranges the full parse takes
    (`Certificate.summary` is the same record from a parsed certificate, and path building checks that the
    two agree). A key identifier is None when absent or unreadable: then it filters nothing. A named tuple, not
    a frozen dataclass: one is made per certificate path building sees, and it is only compared."""

    der: bytes
    tbs: bytes
    signature_algorithm: bytes  # the outer AlgorithmIdentifier's DER
    signature: bytes
    issuer: bytes
    subject: bytes
    spki: bytes
    subject_key_identifier: bytes | None
    authority_key_identifier: bytes | None

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer


# The content octets of the two key identifier extensions' OBJECT IDENTIFIERs, compared as read.
_SKI_OID_CONTENT = encode_oid(oids.SUBJECT_KEY_IDENTIFIER)
_AKI_OID_CONTENT = encode_oid(oids.AUTHORITY_KEY_IDENTIFIER)
_KEY_ID_OIDS = frozenset({_SKI_OID_CONTENT, _AKI_OID_CONTENT})
_TAG_KEY_IDENTIFIER = 0x80


def peek_certificate(der: bytes) -> CertificateSummary:
    """Read only what path building compares and verifies: a few dozen TLV headers, no schema decode, no
    extension decoding. It is not a parse: it refuses malformed framing on the way but accepts much that
    the parse refuses, so a certificate is fully parsed before its content is used for anything else."""
    _, start, end = read_single(der, TAG_SEQUENCE)
    top = children(der, start, end)
    if len(top) != 3 or [t[0] for t in top] != [TAG_SEQUENCE, TAG_SEQUENCE, TAG_BIT_STRING]:
        raise decode_error("Certificate is not SEQUENCE { tbs, algorithm, signature }")
    (_, tbs_header, tbs_start, tbs_end), (_, alg_header, _, alg_end), (_, _, sig_start, sig_end) = top
    if sig_start == sig_end or der[sig_start] != 0:
        raise decode_error("signature BIT STRING has unused bits")
    fields = children(der, tbs_start, tbs_end)
    if fields and fields[0][0] == TAG_VERSION:
        del fields[0]
    if len(fields) < 6:
        raise decode_error("TBSCertificate has too few fields")
    issuer, subject, spki = fields[2], fields[4], fields[5]
    extensions = [f for f in fields[6:] if f[0] == TAG_EXTENSIONS]
    values = _peek_extension_values(der, extensions[0][2], extensions[0][3]) if extensions else {}
    return CertificateSummary(
        der=der,
        tbs=der[tbs_header:tbs_end],
        signature_algorithm=der[alg_header:alg_end],
        signature=der[sig_start + 1 : sig_end],
        issuer=der[issuer[1] : issuer[3]],
        subject=der[subject[1] : subject[3]],
        spki=der[spki[1] : spki[3]],
        subject_key_identifier=_peek_octets(values.get(_SKI_OID_CONTENT), TAG_OCTET_STRING),
        authority_key_identifier=_peek_octets(values.get(_AKI_OID_CONTENT), TAG_SEQUENCE, _TAG_KEY_IDENTIFIER),
    )


def _peek_extension_values(der: bytes, start: int, end: int) -> dict[bytes, bytes]:
    """extnValue of the key identifier extensions by OID content octets, among the first `MAX_EXTENSIONS`
    extensions, up to the first unreadable one. Only those two are read past their OID."""
    values: dict[bytes, bytes] = {}
    try:
        _, _, pos, seq_end = only_child(der, start, end, TAG_SEQUENCE, "explicit tag [3]")
        for _ in range(MAX_EXTENSIONS):
            if pos >= seq_end:
                break
            _, ext_start, ext_end = read_header(der, pos, seq_end)
            pos = ext_end
            tag, oid_start, oid_end = read_header(der, ext_start, ext_end)
            oid = der[oid_start:oid_end]
            if tag == TAG_OID and oid in _KEY_ID_OIDS and oid not in values:
                value_tag, _, value_start, value_end = children(der, oid_end, ext_end)[-1]
                if value_tag == TAG_OCTET_STRING:
                    values[oid] = der[value_start:value_end]
    except (X509Error, IndexError):
        return values
    return values


def _peek_octets(value: bytes | None, outer: int, inner: int | None = None) -> bytes | None:
    """The key identifier in an SKI (OCTET STRING) or AKI (SEQUENCE, first child [0]); None if unreadable."""
    if value is None:
        return None
    try:
        _, start, end = read_single(value, outer)
        if inner is not None:
            tag, start, end = read_header(value, start, end) if start < end else (-1, 0, 0)
            if tag != inner:
                return None
    except X509Error:
        return None
    return value[start:end] or None
