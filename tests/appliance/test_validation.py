from __future__ import annotations

import datetime
import os

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from appliance import pki
from appliance.config import Limits, override
from appliance.validation import BootCaValidator, PeerRejectedError
from outcomes.category import Category
from tests.appliance.certs import DAY, NOW, Spec, mint
from tls.x509 import Purpose

BOOT = pki.generate(NOW, os.urandom)
OTHER = pki.generate(NOW, os.urandom)
SERVER_EKU = (ExtendedKeyUsageOID.SERVER_AUTH,)


VALIDATE = BootCaValidator(BOOT.ca_der)

REFUSALS = [
    ("self-signed", (mint(BOOT.ca, Spec(self_signed=True)).cert_der,), Category.UNTRUSTED_CHAIN),
    # Another boot's CA has the same name: "claims our CA, signature fails" or "not our CA" are both right.
    ("other CA", (OTHER.client.cert_der,), {Category.UNTRUSTED_CHAIN, Category.CHAIN_SIGNATURE_INVALID}),
    ("forged signature", (mint(BOOT.ca, Spec(wrong_signing_key=True)).cert_der,), Category.CHAIN_SIGNATURE_INVALID),
    ("expired", (mint(BOOT.ca, Spec(not_before=NOW - 9 * DAY, not_after=NOW - DAY)).cert_der,), Category.EXPIRED),
    ("not yet valid", (mint(BOOT.ca, Spec(not_before=NOW + DAY, not_after=NOW + 9 * DAY)).cert_der,),
     Category.NOT_YET_VALID),
    ("server cert as client", (BOOT.server.cert_der,), Category.WRONG_EXTENDED_KEY_USAGE),
    ("no digitalSignature", (mint(BOOT.ca, Spec(digital_signature=False)).cert_der,), Category.WRONG_KEY_USAGE),
    ("unknown critical extension", (mint(BOOT.ca, Spec(unknown_critical=True)).cert_der,),
     Category.UNSUPPORTED_CRITICAL_EXTENSION),
    ("empty chain", (), Category.NO_CERTIFICATE),
    ("garbage", (b"\x30\x03\x02\x01\x00",), Category.DECODE_ERROR),
]


def test_good_leaves_pass() -> None:
    VALIDATE((BOOT.client.cert_der,), Purpose.CLIENT_AUTH, NOW)
    VALIDATE((BOOT.server.cert_der,), Purpose.SERVER_AUTH, NOW)
    VALIDATE((mint(BOOT.ca, Spec(eku=SERVER_EKU)).cert_der,), Purpose.SERVER_AUTH, NOW)


@pytest.mark.parametrize(("label", "chain", "category"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_have_their_category(
    label: str, chain: tuple[bytes, ...], category: Category | set[Category]
) -> None:
    with pytest.raises(PeerRejectedError) as info:
        VALIDATE(chain, Purpose.CLIENT_AUTH, NOW)
    allowed = category if isinstance(category, set) else {category}
    assert info.value.category in allowed, info.value.reason


def test_ca_flag_leaf_and_the_ca_itself_are_refused_as_leaves() -> None:
    leaf = mint(BOOT.ca, Spec(ca=True)).cert_der
    with pytest.raises(PeerRejectedError) as info:
        VALIDATE((leaf,), Purpose.CLIENT_AUTH, NOW)
    assert info.value.category is Category.CA_AS_LEAF
    with pytest.raises(PeerRejectedError) as ca_info:
        VALIDATE((BOOT.ca_der,), Purpose.CLIENT_AUTH, NOW)
    assert ca_info.value.category is Category.CA_AS_LEAF


def test_later_time_expires_the_boot_leaves() -> None:
    later = NOW + datetime.timedelta(days=3651)
    with pytest.raises(PeerRejectedError) as info:
        VALIDATE((BOOT.client.cert_der,), Purpose.CLIENT_AUTH, later)
    assert info.value.category is Category.EXPIRED


def test_the_x509_part_of_the_limits_tree_reaches_the_validator() -> None:
    """The appliance's `x509` limits are the ones this validator enforces: a good chain of two certificates
    passes with the defaults and is refused once `--limit tls.x509.max_chain_certificates=1`."""
    chain = (BOOT.client.cert_der, BOOT.ca_der)
    VALIDATE(chain, Purpose.CLIENT_AUTH, NOW)
    limits = override(Limits(), "tls.x509.max_chain_certificates", "1")
    with pytest.raises(PeerRejectedError) as info:
        BootCaValidator(BOOT.ca_der, limits.tls.x509)(chain, Purpose.CLIENT_AUTH, NOW)
    assert info.value.category is Category.PATH_BUILDING_LIMIT
    assert "limit 1" in info.value.reason
