"""Issue 15 against the appliance's own validator: certificates impersonating the boot CA cost (almost) nothing.

The boot CA is the one trust anchor. A peer without its key can still send certificates with its name and
key identifier; each used to be parsed and verified against the others (32 signature checks and eight
parses per handshake). They cannot be the anchor (another key), so they are refused on their bytes.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

import tls.x509.path as path_module
from appliance import pki
from appliance.validation import BootCaValidator, PeerRejectedError
from bench import certs
from outcomes.category import Category
from tests.appliance.certs import DAY, NOW
from tls.x509 import Purpose, signature

BOOT = pki.generate(NOW, os.urandom)


def _impostor_chain(count: int) -> list[bytes]:
    leaf = certs.ca_spec("impostor", ca=False, key_usage=("digital_signature",), eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),
                         not_before=NOW - DAY, not_after=NOW + DAY)
    return certs.impostor_chain(BOOT.ca.certificate, count, leaf).chain


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
