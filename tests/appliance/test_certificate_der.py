"""The boot PKI's own DER writer against cryptography's CertificateBuilder, which wrote these certificates
before (issue 17): for the same key, serial, times, names and extensions, the TBSCertificate bytes must be
the same, byte for byte; the whole certificate must parse, verify under the CA, and pass our validator."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import itertools
import os
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import certificate_der as der
from appliance import pki
from appliance.validation import BootCaValidator, PeerRejectedError
from outcomes.category import Category
from tls.x509 import Purpose, oids

UTC = datetime.UTC
CA_KEY = ec.generate_private_key(ec.SECP256R1())
LEAF_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SAN = ("pinata.local", "localhost", "127.0.0.1", "2001:db8::1")
KINDS = ("ca", "server", "client", "web", "rsa")
BEFORE_2050 = (datetime.datetime(2024, 2, 29, 12, 34, 56, 789, tzinfo=UTC),
               datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC))
ACROSS_2050 = (datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC),
               datetime.datetime(2050, 1, 1, tzinfo=UTC))
AFTER_2050 = (datetime.datetime(2050, 1, 1, tzinfo=UTC), datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _subject_key(kind: str) -> PublicKey:
    if kind == "rsa":
        return RSA_KEY.public_key()
    return (CA_KEY if kind == "ca" else LEAF_KEY).public_key()


# -- the two writers, from the same description --------------------------------------------------------


def ours(kind: str, issuer: str, subject: str, serial: int, validity: tuple[datetime.datetime, datetime.datetime]
         ) -> bytes:
    spki = der.subject_public_key_info(_subject_key(kind))
    extensions: tuple[der.Extension, ...]
    if kind == "ca":
        extensions = (der.basic_constraints(ca=True), der.key_usage(der.KEY_CERT_SIGN, der.CRL_SIGN),
                      der.subject_key_identifier(spki))
    else:
        usage = oids.EKU_CLIENT_AUTH if kind == "client" else oids.EKU_SERVER_AUTH
        extensions = (der.basic_constraints(ca=False), der.key_usage(der.DIGITAL_SIGNATURE),
                      der.extended_key_usage((usage,)),
                      der.authority_key_identifier(der.subject_public_key_info(CA_KEY.public_key())))
        if kind in ("web", "rsa"):
            extensions += (der.subject_alt_name(SAN),)
    return der.tbs_certificate(der.TbsCertificate(issuer, subject, serial, *validity, spki, extensions))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Piñata"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, leaf: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=leaf, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not leaf, crl_sign=not leaf,
                         encipher_only=False, decipher_only=False)


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for value in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(value)))
        except ValueError:
            general.append(x509.DNSName(value))
    return x509.SubjectAlternativeName(general)


def theirs(kind: str, issuer: str, subject: str, serial: int,
           validity: tuple[datetime.datetime, datetime.datetime]) -> x509.Certificate:
    """What the boot PKI's builder code (before issue 17) made of the same description."""
    public_key = _subject_key(kind)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(public_key).serial_number(serial)
               .not_valid_before(validity[0]).not_valid_after(validity[1]))
    if kind == "ca":
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(_key_usage(leaf=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if kind == "client" else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(_key_usage(leaf=True), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(CA_KEY.public_key()),
                                  critical=False))
        if kind in ("web", "rsa"):
            builder = builder.add_extension(_san(SAN), critical=False)
    return builder.sign(CA_KEY, hashes.SHA256())


# -- byte for byte -----------------------------------------------------------------------------------


@pytest.mark.parametrize("validity", [BEFORE_2050, ACROSS_2050, AFTER_2050], ids=["utc", "across", "generalized"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_tbs_is_the_one_cryptography_builds(kind: str, validity: tuple[datetime.datetime, datetime.datetime]
                                                ) -> None:
    args = ("Piñata boot CA", "Piñata boot CA" if kind == "ca" else f"Piñata {kind}", 0x1234_5678_9ABC, validity)
    assert ours(kind, *args) == theirs(kind, *args).tbs_certificate_bytes


def test_the_validity_switches_to_generalized_time_in_2050() -> None:
    """RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, "Z"."""
    tbs = ours("client", "ca", "leaf", 1, ACROSS_2050)
    assert b"\x17\x0d491231235959Z\x18\x0f20500101000000Z" in tbs


common_names = st.text(min_size=1, max_size=64).filter(lambda s: len(s.encode("utf-8")) <= 64)
moments = st.datetimes(min_value=datetime.datetime(1950, 1, 1), max_value=datetime.datetime(9999, 12, 31, 23, 59, 59),
                       timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(KINDS), issuer=common_names, subject=common_names,
       serial=st.integers(1, 2**127 - 1), times=st.lists(moments, min_size=2, max_size=2).map(sorted))
def test_any_description_gives_cryptographys_bytes(kind: str, issuer: str, subject: str, serial: int,
                                                   times: list[datetime.datetime]) -> None:
    validity = (times[0], times[1])
    assert ours(kind, issuer, subject, serial, validity) == \
        theirs(kind, issuer, subject, serial, validity).tbs_certificate_bytes


def test_a_time_with_an_offset_is_written_in_utc() -> None:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    validity = (datetime.datetime(2050, 1, 1, 1, 0, tzinfo=plus_two), datetime.datetime(2060, 1, 1, tzinfo=plus_two))
    tbs = ours("server", "ca", "leaf", 7, validity)
    assert tbs == theirs("server", "ca", "leaf", 7, validity).tbs_certificate_bytes
    assert b"\x17\x0d491231230000Z" in tbs


def test_every_key_usage_is_cryptographys_bit_string() -> None:
    """DER drops the trailing zero bits (X.690 11.2.2); bit 8 (decipherOnly) takes a second octet."""
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    for flags in itertools.product((False, True), repeat=len(names)):
        chosen = dict(zip(names, flags, strict=True))
        if not any(flags) or (not chosen["key_agreement"] and (chosen["encipher_only"] or chosen["decipher_only"])):
            continue  # cryptography refuses these
        bits = [bit for bit, on in enumerate(flags) if on]
        assert der.key_usage(*bits).value == x509.KeyUsage(**chosen).public_bytes(), bits


@pytest.mark.parametrize("key", [CA_KEY, RSA_KEY], ids=["p256", "rsa"])
def test_the_key_identifier_is_rfc5280_method_1(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    expected = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    assert der.key_identifier(_spki(key.public_key())) == expected


def _short_coordinate_key() -> ec.EllipticCurvePublicKey:
    """A P-256 key whose x has a zero leading octet: its point must still take 32 octets per coordinate."""
    for scalar in range(1, 10_000):
        key = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
        if key.public_numbers().x < 1 << 248:
            return key
    raise AssertionError("no scalar below 10000 gives a short x")


def test_a_p256_subject_public_key_info_is_cryptographys() -> None:
    keys = [_short_coordinate_key(), *(ec.generate_private_key(ec.SECP256R1()).public_key() for _ in range(16))]
    for key in keys:
        assert der.subject_public_key_info(key) == _spki(key)


@pytest.mark.parametrize(("bits", "exponent"), [(2048, 65537), (1032, 65537), (1028, 3)],
                         ids=["2048", "1032-sign-octet", "1028-no-sign-octet-e3"])
def test_an_rsa_subject_public_key_info_is_cryptographys(bits: int, exponent: int) -> None:
    """A modulus of a whole number of octets with its top bit set takes a leading zero octet (1032 bits), one
    of 1028 bits does not; e = 3 is one octet. 2048 is the size the boot PKI makes (RSA_KEY)."""
    key = RSA_KEY.public_key() if bits == 2048 else rsa.generate_private_key(exponent, bits).public_key()
    assert der.subject_public_key_info(key) == _spki(key)


def test_a_key_the_boot_pki_never_makes_has_no_subject_public_key_info() -> None:
    with pytest.raises(ValueError, match="secp384r1"):
        der.subject_public_key_info(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(TypeError, match="Ed25519"):
        der.subject_public_key_info(ed25519.Ed25519PrivateKey.generate().public_key())


def test_alt_names_keep_their_order_and_kind() -> None:
    names = ("10.0.0.1", "a.example", "::1", "b.example")
    assert der.subject_alt_name(names).value == _san(names).public_bytes()


# -- the whole certificate ---------------------------------------------------------------------------


def _issued(kind: str, subject: str, validity: tuple[datetime.datetime, datetime.datetime]) -> bytes:
    tbs = ours(kind, "Piñata boot CA", subject, 99, validity)
    return der.certificate(tbs, CA_KEY.sign(tbs, ec.ECDSA(hashes.SHA256())))


@pytest.mark.parametrize("validity", [BEFORE_2050, AFTER_2050], ids=["utc", "generalized"])
def test_our_certificates_parse_verify_and_validate(validity: tuple[datetime.datetime, datetime.datetime]) -> None:
    ca_der = _issued("ca", "Piñata boot CA", validity)
    ca = x509.load_der_x509_certificate(ca_der)
    ca.verify_directly_issued_by(ca)
    validate = BootCaValidator(ca_der)
    during = validity[0] + datetime.timedelta(days=1)
    for kind, purpose in (("server", Purpose.SERVER_AUTH), ("web", Purpose.SERVER_AUTH), ("rsa", Purpose.SERVER_AUTH),
                          ("client", Purpose.CLIENT_AUTH)):
        leaf_der = _issued(kind, "leaf", validity)
        leaf = x509.load_der_x509_certificate(leaf_der)
        assert leaf.public_bytes(serialization.Encoding.DER) == leaf_der
        leaf.verify_directly_issued_by(ca)
        validate((leaf_der,), purpose, during)
        validate((leaf_der, ca_der), purpose, during)


def test_the_boot_pkis_leaves_validate_for_their_purposes() -> None:
    now = datetime.datetime.now(UTC)
    boot = pki.generate(now, os.urandom)
    validate = BootCaValidator(boot.ca_der)
    for identity, purpose in ((boot.server, Purpose.SERVER_AUTH), (boot.web, Purpose.SERVER_AUTH),
                              (boot.client, Purpose.CLIENT_AUTH)):
        for leaf_der in (identity.cert_der, *(alternate.cert_der for alternate in identity.alternates)):
            x509.load_der_x509_certificate(leaf_der).verify_directly_issued_by(boot.ca.certificate)
            validate((leaf_der,), purpose, now)


def test_a_flipped_tbs_byte_breaks_the_signature() -> None:
    tbs = ours("client", "Piñata boot CA", "flip me", 5, BEFORE_2050)
    signature = CA_KEY.sign(tbs, ec.ECDSA(hashes.SHA256()))
    flipped = tbs.replace(b"flip me", b"flip mf")
    assert len(flipped) == len(tbs)
    assert flipped != tbs
    ca = x509.load_der_x509_certificate(_issued("ca", "Piñata boot CA", BEFORE_2050))
    x509.load_der_x509_certificate(der.certificate(tbs, signature)).verify_directly_issued_by(ca)
    forged = der.certificate(flipped, signature)
    with pytest.raises(InvalidSignature):
        x509.load_der_x509_certificate(forged).verify_directly_issued_by(ca)
    with pytest.raises(PeerRejectedError) as info:
        BootCaValidator(ca.public_bytes(serialization.Encoding.DER))((forged,), Purpose.CLIENT_AUTH, BEFORE_2050[0])
    assert info.value.category is Category.CHAIN_SIGNATURE_INVALID


# -- the boot PKI's certificates are the builder's ----------------------------------------------------


def test_the_boot_pki_issues_what_its_builder_code_issued() -> None:
    """Each certificate `pki.generate` writes is, field for field, what the builder code wrote for the same
    keys, serials and time: rebuilt with cryptography from what the certificate says, the TBS is the same."""
    now = datetime.datetime.now(UTC)
    boot = pki.generate(now, os.urandom)
    ca_key = boot.ca.key.public_key()
    ca_usage = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                             encipher_only=False, decipher_only=False)
    ca_extensions: list[x509.ExtensionType] = [
        x509.BasicConstraints(ca=True, path_length=0), ca_usage, x509.SubjectKeyIdentifier.from_public_key(ca_key)]
    web_san = x509.SubjectAlternativeName([*(x509.DNSName(n) for n in pki.WEB_NAMES),
                                           *(x509.IPAddress(ipaddress.ip_address(a)) for a in pki.WEB_ADDRESSES)])
    cases: list[tuple[pki.Identity | pki.RsaIdentity, str, list[x509.ExtensionType]]] = [
        (boot.ca, pki.CA_COMMON_NAME, ca_extensions)]
    for identity, common_name, usage, san in (
            (boot.server, "Piñata mutual-TLS server", ExtendedKeyUsageOID.SERVER_AUTH, None),
            (boot.client, "Piñata client", ExtendedKeyUsageOID.CLIENT_AUTH, None),
            (boot.web, pki.WEB_NAMES[0], ExtendedKeyUsageOID.SERVER_AUTH, web_san)):
        leaf_extensions: list[x509.ExtensionType] = [
            x509.BasicConstraints(ca=False, path_length=None), _key_usage(leaf=True), x509.ExtendedKeyUsage([usage]),
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key), *([san] if san else [])]
        leaves: tuple[pki.Identity | pki.RsaIdentity, ...] = (identity, *identity.alternates)
        cases += [(leaf, common_name, leaf_extensions) for leaf in leaves]
    assert len(cases) == 6
    for issued, common_name, extensions in cases:
        cert = issued.certificate
        validity = pki.CA_VALIDITY if issued is boot.ca else pki.LEAF_VALIDITY
        builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(pki.CA_COMMON_NAME))
                   .public_key(issued.key.public_key()).serial_number(cert.serial_number)
                   .not_valid_before(now - pki.BACKDATE).not_valid_after(now + validity))
        for extension in extensions:
            critical = isinstance(extension, x509.BasicConstraints | x509.KeyUsage)
            builder = builder.add_extension(extension, critical=critical)
        assert cert.tbs_certificate_bytes == builder.sign(boot.ca.key, hashes.SHA256()).tbs_certificate_bytes
        cert.verify_directly_issued_by(boot.ca.certificate)


# -- what the writer refuses ---------------------------------------------------------------------------

GOOD = der.TbsCertificate("ca", "leaf", 1, *BEFORE_2050, _spki(LEAF_KEY.public_key()), ())
REFUSED = [
    ("serial zero", {"serial": 0}),
    ("negative serial", {"serial": -1}),
    ("serial of 160 bits", {"serial": 1 << 159}),
    ("naive time", {"not_before": datetime.datetime(2024, 1, 1)}),
    ("before 1950", {"not_before": datetime.datetime(1949, 12, 31, 23, 59, 59, tzinfo=UTC)}),
    ("ends before it starts", {"not_after": BEFORE_2050[0] - datetime.timedelta(seconds=1)}),
    ("empty common name", {"subject": ""}),
    ("common name of 65 octets", {"issuer": "ñ" * 32 + "x"}),
]


@pytest.mark.parametrize(("label", "change"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_no_certificate_can_say_is_refused(label: str, change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case its own message
        dataclasses.replace(GOOD, **change)


def test_the_largest_serial_and_longest_name_are_written() -> None:
    largest = dataclasses.replace(GOOD, serial=(1 << 159) - 1, subject="ñ" * 32)
    tbs = der.tbs_certificate(largest)
    assert b"\x02\x14\x7f" + b"\xff" * 19 in tbs
    assert x509.load_der_x509_certificate(der.certificate(tbs, CA_KEY.sign(tbs, ec.ECDSA(hashes.SHA256())))
                                          ).serial_number == largest.serial


def test_empty_key_usage_and_alt_names_are_refused() -> None:
    with pytest.raises(ValueError, match="KeyUsage"):
        der.key_usage()
    with pytest.raises(ValueError, match="SubjectAltName"):
        der.subject_alt_name(())
