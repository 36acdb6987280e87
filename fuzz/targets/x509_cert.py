"""Certificate parsing (tls/x509/parse.py `parse_certificate`): DER walk, schema, fields and extensions.

What must hold: only X509Error escapes (from the parse and from loading the public key); a parsed certificate
keeps exactly the input as its DER; the cheap summary path building reads first (`peek_certificate`) agrees with
the full parse on every field it reads (issuer, subject, key, identifiers, what the signature covers); the
log-safe renderings stay short.
"""

from __future__ import annotations

from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fuzz.errors import PropertyViolationError, require
from tls.x509 import X509Error, parse_certificate
from tls.x509.peek import peek_certificate

RENDERING_LIMIT = 120
"""Name.__str__ truncates to this many characters (what a log line may quote of a certificate)."""


def fuzz_one(data: bytes) -> None:
    try:
        certificate = parse_certificate(data)
    except X509Error:
        return
    require(certificate.der == data, "the parsed certificate is not the input")
    try:
        summary = peek_certificate(data)
    except X509Error as refused:
        raise PropertyViolationError(f"peek refuses what the parse accepts: {refused}") from refused
    require(summary == certificate.summary, "peek_certificate and parse_certificate disagree")
    require(len(str(certificate.subject)) <= RENDERING_LIMIT, "subject rendering too long")
    require(len(str(certificate.issuer)) <= RENDERING_LIMIT, "issuer rendering too long")
    require(certificate.not_before.tzinfo is not None and certificate.not_after.tzinfo is not None,
            "validity times without a zone")
    try:
        certificate.public_key()
    except X509Error:
        return


def seeds() -> dict[str, bytes]:
    from cryptography import x509  # noqa: PLC0415 (seeds only)

    from bench import certs  # noqa: PLC0415
    from fuzz.fixtures import bench_chain, boot  # noqa: PLC0415

    fixture, chain = boot(), bench_chain()
    rich = certs.issue(certs.Spec(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rich"),
                           x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Piñata")]),
        dns=("a.example", "*.b.example"), ips=("192.0.2.1", "2001:db8::1"), emails=("x@example.com",),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
        permitted=[x509.DNSName("example")], ca=True, path_length=1, key_usage=certs.CA_USAGE,
        extra=((x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None)]),
                False),)), issuer=chain.intermediate, key=chain.client.key)
    return {
        "boot-ca": fixture.pki.ca_der,
        "boot-server": fixture.pki.server.cert_der,
        "boot-web-san": fixture.pki.web.cert_der,
        "boot-rsa": fixture.pki.server.alternates[0].cert_der,
        "ed25519-root": chain.root.der,
        "ed25519-intermediate": chain.intermediate.der,
        "rich-extensions": rich.der,
        "unknown-critical": certs.issue(certs.Spec(unknown_critical=True), issuer=chain.intermediate,
                                        key=chain.server.key).der,
    }
