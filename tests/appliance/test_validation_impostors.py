"""Issue 15 against the appliance's own validator: certificates impersonating the boot CA cost (almost) nothing.

The boot CA is the one trust anchor. A peer without its key can still send certificates with its name and
key identifier; each used to be parsed and verified against the others (32 signature checks and eight
parses per handshake). They cannot be the anchor (another key), so they are refused on their bytes.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import tls.x509.path as path_module
from appliance import pki
from appliance.validation import BootCaValidator, PeerRejectedError
from outcomes.category import Category
from tests.appliance.certs import DAY, NOW
from tls.x509 import Purpose, signature

BOOT = pki.generate(NOW, os.urandom)
DER = serialization.Encoding.DER


def _impostor_chain(count: int) -> list[bytes]:
    """A client leaf and `count` "boot CA" certificates (the CA's name and key identifier, their own keys),
    each signed by the next one's key, the last self-signed, the leaf by the first's."""
    ca = BOOT.ca.certificate
    key_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = x509.AuthorityKeyIdentifier(key_id.digest, None, None)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(count)]

    def builder(subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - DAY).not_valid_after(NOW + DAY)
            .add_extension(aki, critical=False)
        )

    chain = []
    for index, key in enumerate(keys):
        fake = (
            builder(ca.subject, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(key_id, critical=False)
        )
        chain.append(fake.sign(keys[index + 1] if index + 1 < count else key, hashes.SHA256()).public_bytes(DER))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor")]), leaf_key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(keys[0], hashes.SHA256())
    )
    return [leaf.public_bytes(DER), *chain]


def test_seven_fake_boot_cas_cost_one_signature_check(monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[int] = []
    real = signature.verify_signature

    def counting(*args: Any) -> None:
        checks.append(1)
        real(*args)

    monkeypatch.setattr(path_module, "verify_signature", counting)
    with pytest.raises(PeerRejectedError) as info:
        BootCaValidator(BOOT.ca_der)(_impostor_chain(7), Purpose.CLIENT_AUTH, NOW)
    assert info.value.category is Category.CHAIN_SIGNATURE_INVALID, info.value.reason
    assert len(checks) == 1  # the leaf against the boot CA's real key; no fake was verified
