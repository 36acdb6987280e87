"""Signature work is metered by what each check costs (tls.x509.keys.verify_cost), not only counted: a peer
that picks the dearest RSA keys the key policy allows (8192 bits, a 32-bit exponent) cannot make one refusal
cost tens of ordinary verifications. Found by review: eleven such forged issuers cost ten times a normal
chain, with no private key needed (the signatures are random bytes below the modulus)."""

from __future__ import annotations

import datetime
import os

import pytest
from cryptography import x509 as cx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench import certs
from outcomes.category import Category
from tls import x509
from tls.x509.keys import KeyKind, parse_spki, verify_cost
from tls.x509.limits import ValidationLimits
from tls.x509.work import Work

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
FORGED = cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, "forged issuer")])
SIGNER = rsa.generate_private_key(65537, 2048)  # signs the TBS; the signature is then replaced by random bytes


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    size = (n.bit_length() + 7) // 8
    length = bytes([n]) if n < 128 else bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([tag]) + length + content


def _with_random_signature(cert: cx.Certificate, size: int) -> bytes:
    """The certificate's TBS under sha256WithRSAEncryption with `size` random bytes as the signature (below
    any modulus of that size, so a verifier does the whole exponentiation before it fails)."""
    algorithm = _tlv(0x30, _tlv(0x06, bytes.fromhex("2a864886f70d01010b")) + b"\x05\x00")
    signature = b"\x01" + os.urandom(size - 1)
    return _tlv(0x30, cert.tbs_certificate_bytes + algorithm + _tlv(0x03, b"\x00" + signature))


def _dear_issuers(count: int) -> list[bytes]:
    """Forged CAs holding public keys nobody has the private half of: built here, not by bench.certs (whose
    certificates are for keys it holds)."""
    modulus = int.from_bytes(os.urandom(1024), "big") | (1 << 8191) | 1  # random, odd, 8192 bits
    out = []
    for i in range(count):
        key = rsa.RSAPublicNumbers((1 << 32) - 1 - 2 * i, modulus).public_key()
        cert = (cx.CertificateBuilder().subject_name(FORGED).issuer_name(FORGED).public_key(key)
                .serial_number(i + 1).not_valid_before(NOW - DAY).not_valid_after(NOW + DAY)
                .add_extension(cx.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(cx.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                .sign(SIGNER, hashes.SHA256()))
        out.append(_with_random_signature(cert, 1024))
    return out


def _leaf() -> bytes:
    spec = certs.Spec("leaf", issuer_name=FORGED, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), san=False, ski=False,
                      aki_key_id=b"k" * 20, serial=99, not_before=NOW - DAY, not_after=NOW + DAY)
    return _with_random_signature(certs.issue(spec, key=certs.new_key(), signing_key=SIGNER).certificate, 1024)


def _anchor() -> bytes:
    spec = certs.Spec("the one anchor", ca=True, key_usage=None, eku=None, san=False, ski=False, serial=1,
                      not_before=NOW - DAY, not_after=NOW + DAY)
    return certs.issue(spec, key=certs.new_key()).der


def _spki(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _rsa_spki(bits: int, exponent: int) -> bytes:
    return _spki(rsa.RSAPublicNumbers(exponent, (1 << (bits - 1)) | 1).public_key())


def test_verify_cost_grows_with_the_modulus_squared_and_the_exponent_length() -> None:
    assert verify_cost(parse_spki(_spki(ec.generate_private_key(ec.SECP256R1()).public_key()))) == 1
    assert verify_cost(parse_spki(_spki(ec.generate_private_key(ec.SECP521R1()).public_key()))) == 1
    assert verify_cost(parse_spki(_rsa_spki(2048, 65537))) == 1
    assert verify_cost(parse_spki(_rsa_spki(2048, 3))) == 1
    assert verify_cost(parse_spki(_rsa_spki(3072, 65537))) == 4  # a started 2048-bit block counts whole
    assert verify_cost(parse_spki(_rsa_spki(4096, 65537))) == 4
    assert verify_cost(parse_spki(_rsa_spki(4096, (1 << 17) + 1))) == 8
    assert verify_cost(parse_spki(_rsa_spki(8192, 65537))) == 16
    assert verify_cost(parse_spki(_rsa_spki(8192, (1 << 32) - 1))) == 32


def test_an_rsa_pss_key_costs_what_its_modulus_and_exponent_cost() -> None:
    pss = parse_spki(_rsa_spki(8192, (1 << 32) - 1))._replace(kind=KeyKind.RSA_PSS)
    assert verify_cost(pss) == 32


def test_a_chain_of_the_dearest_forged_issuers_is_refused_within_the_work_budget() -> None:
    work = Work()
    with pytest.raises(x509.X509Error) as info:
        x509.validate((_leaf(), *_dear_issuers(11)), anchors=(_anchor(),), purpose=x509.Purpose.CLIENT_AUTH,
                      name=None, time=NOW, work=work)
    assert info.value.category is Category.PATH_BUILDING_LIMIT
    assert work.signature_work <= ValidationLimits().max_signature_work
    assert work.signature_checks <= 1  # a single dear check uses the whole budget; counted, it allowed 16


def test_the_signature_work_budget_is_a_limit_of_its_own() -> None:
    work = Work()
    limits = ValidationLimits(max_signature_work=31)  # one dear check (32 units) does not fit
    with pytest.raises(x509.X509Error) as info:
        x509.validate((_leaf(), *_dear_issuers(1)), anchors=(_anchor(),), purpose=x509.Purpose.CLIENT_AUTH,
                      name=None, time=NOW, limits=limits, work=work)
    assert info.value.category is Category.PATH_BUILDING_LIMIT
    assert (work.signature_checks, work.signature_work) == (0, 0)
