"""The proof of possession checked by an independent implementation: btclib (a test-only dependency, pure
Python, sharing no code with appliance.bitcoin or coincurve). Its `verify` is the BIP-137/Electrum check for
both addresses; its `message_verify` re-implements Bitcoin Core's MessageVerify for the P2PKH one."""

from __future__ import annotations

import datetime
import json
import os
from urllib.parse import quote

import pytest
from btclib.ecc import bms

from appliance.config import Limits, Ports
from appliance.http import Request
from appliance.stats import Stats
from appliance.vault import Vault
from appliance.web import Site
from tests.appliance.test_vault import CHALLENGES, MAX_CHALLENGE

NOW = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.UTC)


def _vault() -> Vault:
    return Vault(os.urandom(32), lambda *args: None)


@pytest.mark.parametrize("challenge", CHALLENGES, ids=["short", "max-ascii", "max-utf8"])
def test_btclib_verifies_both_proofs(challenge: str) -> None:
    proof = _vault().proof(challenge, NOW)
    message = proof.message.encode("utf-8")
    assert bms.verify(message, proof.address_p2wpkh, proof.signature_p2wpkh)
    assert bms.verify(message, proof.address_p2pkh, proof.signature_p2pkh)
    assert bms.message_verify(message, proof.address_p2pkh, proof.signature_p2pkh) is bms.MessageVerificationResult.OK


@pytest.mark.parametrize("challenge", ["challenge-A", "A" * MAX_CHALLENGE], ids=["short", "max"])
def test_btclib_refuses_a_changed_challenge_key_or_address_type(challenge: str) -> None:
    vault = _vault()
    proof = vault.proof(challenge, NOW)
    changed = proof.message.replace(challenge, "B" + challenge[1:]).encode("utf-8")
    assert not bms.verify(changed, proof.address_p2wpkh, proof.signature_p2wpkh)
    assert not bms.verify(changed, proof.address_p2pkh, proof.signature_p2pkh)
    core = bms.message_verify(changed, proof.address_p2pkh, proof.signature_p2pkh)
    assert core is bms.MessageVerificationResult.ERR_NOT_SIGNED
    message = proof.message.encode("utf-8")
    assert not bms.verify(message, _vault().address_p2wpkh, proof.signature_p2wpkh)  # another key
    assert not bms.verify(message, proof.address_p2pkh, proof.signature_p2wpkh)  # header 39-42 is not P2PKH


def test_btclib_verifies_what_the_proof_endpoint_serves() -> None:
    limits = Limits()
    site = Site(_vault().prover(), b"", Stats(limits), None, Ports(), limits, "t")
    challenge = "ünïcode " + "x" * (MAX_CHALLENGE - 10)  # exactly the limit in UTF-8 bytes
    target = "/proof?challenge=" + quote(challenge)
    response = site.handle(Request("GET", target, "HTTP/1.1", (("host", "x"),), True), 1_800_000_000.0)
    assert response.status == 200
    proof = json.loads(response.body)
    message = proof["message"].encode("utf-8")
    assert f"challenge: {challenge}" in proof["message"]
    assert bms.verify(message, proof["address"], proof["signature"])
    assert bms.verify(message, proof["address_legacy"], proof["signature_legacy"])
