from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from appliance import pki

NOW = datetime.datetime.now(datetime.UTC)


def test_ca_extensions() -> None:
    boot = pki.generate(NOW, os.urandom)
    ca = boot.ca.certificate
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    assert isinstance(boot.ca.key, ec.EllipticCurvePrivateKey)
    assert ca.issuer == ca.subject


def test_leaf_extensions_and_issuer() -> None:
    boot = pki.generate(NOW, os.urandom)
    expected = {
        "server": ExtendedKeyUsageOID.SERVER_AUTH,
        "client": ExtendedKeyUsageOID.CLIENT_AUTH,
        "web": ExtendedKeyUsageOID.SERVER_AUTH,
    }
    for label, eku in expected.items():
        cert = getattr(boot, label).certificate
        cert.verify_directly_issued_by(boot.ca.certificate)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature
        assert not usage.key_cert_sign
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [eku]
    san = boot.web.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "pinata.local" in san.get_values_for_type(x509.DNSName)


def test_every_boot_has_a_fresh_ca() -> None:
    assert pki.generate(NOW, os.urandom).ca_der != pki.generate(NOW, os.urandom).ca_der


def test_export_writes_keys_private(tmp_path: Path) -> None:
    boot = pki.generate(NOW, os.urandom)
    written = pki.export(boot, tmp_path / "pki")
    names = sorted(p.name for p in written)
    assert names == sorted(f"{n}.{e}" for n in ("ca", "server", "client", "web") for e in ("pem", "key"))
    assert (tmp_path / "pki" / "ca.pem").read_bytes() == boot.ca_pem
    assert stat.S_IMODE((tmp_path / "pki" / "ca.key").stat().st_mode) == 0o600


def test_exported_files_appear_whole_never_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test image's init copies the files out as soon as they all exist: a final name must never
    exist before its whole content does (each file is written beside it, then renamed into place)."""
    boot = pki.generate(NOW, os.urandom)
    directory = tmp_path / "pki"
    renamed: list[str] = []
    real_replace = os.replace

    def watching_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        assert not Path(target).exists(), f"{target} existed before its content was complete"
        assert Path(source).read_bytes(), f"{source} is empty"
        renamed.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", watching_replace)
    written = pki.export(boot, directory)
    assert sorted(renamed) == sorted(p.name for p in written)
    assert sorted(p.name for p in directory.iterdir()) == sorted(renamed)  # nothing partial left behind
    assert (directory / "client.key").read_bytes() == boot.client.key_pem


def test_issued_keeps_the_leaves_and_the_ca_certificate_but_no_ca_key() -> None:
    boot = pki.generate(NOW, os.urandom)
    issued = boot.issued()
    assert (issued.ca_der, issued.ca_pem) == (boot.ca_der, boot.ca_pem)
    assert (issued.server, issued.client, issued.web) == (boot.server, boot.client, boot.web)
    assert not hasattr(issued, "ca")
    ca_value = boot.ca.key.private_numbers().private_value
    for value in vars(issued).values():
        if isinstance(value, pki.Identity):
            assert value.key.private_numbers().private_value != ca_value


def test_a_random_source_that_gives_short_reads_is_refused() -> None:
    short = lambda n: os.urandom(n - 1)  # noqa: E731
    with pytest.raises(ValueError, match="random source"):
        pki.new_key(short)
    with pytest.raises(ValueError, match="random source"):
        pki.generate(NOW, short)


def test_each_server_role_has_an_rsa_leaf_beside_its_ecdsa_one() -> None:
    """Issue 15: clients that verify RSA only were refused; the RSA leaf has the ECDSA leaf's name, usages and
    SAN, is issued by the boot CA, and one RSA-2048 key serves both roles (it is the boot PKI's slow step)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    boot = pki.generate(NOW, os.urandom)
    assert boot.client.alternates == ()
    keys = set()
    for identity in (boot.server, boot.web):
        (alternate,) = identity.alternates
        cert = alternate.certificate
        cert.verify_directly_issued_by(boot.ca.certificate)
        assert isinstance(alternate.key, rsa.RSAPrivateKey)
        assert alternate.key.key_size == pki.RSA_KEY_BITS == 2048
        assert cert.subject == identity.certificate.subject
        for kind in (x509.BasicConstraints, x509.KeyUsage, x509.ExtendedKeyUsage):
            assert cert.extensions.get_extension_for_class(kind).value == \
                identity.certificate.extensions.get_extension_for_class(kind).value
        keys.add(alternate.key.private_numbers().d)
    san = boot.web.alternates[0].certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "pinata.local" in san.get_values_for_type(x509.DNSName)
    assert len(keys) == 1
    assert boot.issued().web.alternates == boot.web.alternates


def test_the_pem_is_the_standard_armour_of_the_der() -> None:
    """cert_pem and ca_pem are made from the DER without cryptography.x509: the same bytes it would write."""
    boot = pki.generate(NOW, os.urandom)
    for identity in (boot.ca, boot.server, boot.client, boot.web, *boot.server.alternates):
        assert identity.certificate.public_bytes(serialization.Encoding.DER) == identity.cert_der
        assert identity.cert_pem == identity.certificate.public_bytes(serialization.Encoding.PEM)
    assert boot.issued().ca_pem == boot.ca_pem == boot.issued().ca_certificate.public_bytes(serialization.Encoding.PEM)


def test_a_leaf_is_issued_by_the_boot_ca_only() -> None:
    """The issuer name a leaf carries is the boot CA's: a leaf signed by another CA would name the wrong issuer."""
    boot = pki.generate(NOW, os.urandom)
    server = pki.Identity(boot.server.cert_der, boot.server.key)  # a certificate that is no boot CA
    with pytest.raises(ValueError, match="boot CA only"):
        pki.make_leaf(server, "stray", "1.3.6.1.5.5.7.3.2", NOW, os.urandom)


def test_make_leaf_takes_a_dotted_usage_and_a_tuple_of_alt_names() -> None:
    boot = pki.generate(NOW, os.urandom)
    leaf = pki.make_leaf(boot.ca, "extra", "1.3.6.1.5.5.7.3.2", NOW, os.urandom, san=("a.example", "::1"))
    cert = leaf.certificate
    cert.verify_directly_issued_by(boot.ca.certificate)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["::1"]
    bare = pki.make_leaf(boot.ca, "no san", "1.3.6.1.5.5.7.3.1", NOW, os.urandom).certificate
    with pytest.raises(x509.ExtensionNotFound):
        bare.extensions.get_extension_for_class(x509.SubjectAlternativeName)
