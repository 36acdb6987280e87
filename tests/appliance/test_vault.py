from __future__ import annotations

import datetime
from collections.abc import Sequence

import coincurve
import pytest

from appliance import bitcoin
from appliance.config import DEFAULT_LIMITS
from appliance.validation import PeerRejectedError
from appliance.vault import Vault
from outcomes.category import Category
from tests.appliance.bip137_reference import verify_message
from tls.x509 import Purpose

NOW = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.UTC)
SECRET = bytes.fromhex("1e99423a4ed27608a15a2616a2b0e9e52ced330ac530edcc32c8ffc6a526aedd")


class RecordingValidator:
    def __init__(self, refuse: Category | None) -> None:
        self.refuse = refuse
        self.calls: list[tuple[tuple[bytes, ...], Purpose]] = []

    def __call__(self, chain: Sequence[bytes], purpose: Purpose, now: datetime.datetime) -> None:
        self.calls.append((tuple(chain), purpose))
        if self.refuse is not None:
            raise PeerRejectedError(self.refuse, "refused for the test")


MAX_CHALLENGE = DEFAULT_LIMITS.http_max_challenge
CHALLENGES = [
    "my challenge 123",
    "c" * MAX_CHALLENGE,  # the message is then over 252 bytes: a 3-byte CompactSize length prefix
    "é" * (MAX_CHALLENGE // 2),  # the limit counts UTF-8 bytes, and so does the signed length
]


@pytest.mark.parametrize("challenge", CHALLENGES, ids=["short", "max-ascii", "max-utf8"])
def test_proof_verifies_independently_both_formats(challenge: str) -> None:
    vault = Vault(SECRET, RecordingValidator(None))
    proof = vault.proof(challenge, NOW)
    assert f"challenge: {challenge}" in proof.message
    assert verify_message(proof.address_p2wpkh, proof.message, proof.signature_p2wpkh)
    assert verify_message(proof.address_p2pkh, proof.message, proof.signature_p2pkh)


def test_maximum_challenge_needs_the_long_length_prefix() -> None:
    """Guards the parametrization above: the longest allowed challenge must really cross the one-byte length."""
    message = Vault(SECRET, RecordingValidator(None)).proof("c" * MAX_CHALLENGE, NOW).message
    assert len(message.encode()) >= 253


@pytest.mark.parametrize("challenge", ["challenge-A", "A" * MAX_CHALLENGE], ids=["short", "max"])
def test_proof_fails_for_a_changed_challenge_or_address(challenge: str) -> None:
    vault = Vault(SECRET, RecordingValidator(None))
    proof = vault.proof(challenge, NOW)
    changed = proof.message.replace(challenge, "B" + challenge[1:])
    assert not verify_message(proof.address_p2wpkh, changed, proof.signature_p2wpkh)
    assert not verify_message(proof.address_p2pkh, changed, proof.signature_p2pkh)
    other = Vault(bytes(31) + b"\x07", RecordingValidator(None))
    assert not verify_message(other.address_p2wpkh, proof.message, proof.signature_p2wpkh)
    # The header byte binds the address type: a P2WPKH signature does not pass as a P2PKH one.
    assert not verify_message(proof.address_p2pkh, proof.message, proof.signature_p2wpkh)


def test_addresses_match_coincurve_public_key() -> None:
    vault = Vault(SECRET, RecordingValidator(None))
    public = coincurve.PrivateKey(SECRET).public_key.format(compressed=True)
    assert vault.address_p2wpkh == bitcoin.p2wpkh_address(public)
    assert vault.address_p2pkh == bitcoin.p2pkh_address(public)
    assert SECRET.hex() not in repr(vault)


def test_release_runs_the_validator_and_returns_the_wif() -> None:
    validator = RecordingValidator(None)
    vault = Vault(SECRET, validator)
    wif = vault.release((b"leaf",), Purpose.CLIENT_AUTH, NOW)
    assert bitcoin.wif_decode(wif.decode()) == SECRET
    assert validator.calls == [((b"leaf",), Purpose.CLIENT_AUTH)]


@pytest.mark.parametrize("category", [Category.UNTRUSTED_CHAIN, Category.NO_CERTIFICATE, Category.EXPIRED])
def test_release_refused_when_the_validator_refuses(category: Category) -> None:
    vault = Vault(SECRET, RecordingValidator(category))
    with pytest.raises(PeerRejectedError) as info:
        vault.release((b"leaf",), Purpose.SERVER_AUTH, NOW)
    assert info.value.category is category


def test_the_prover_proves_and_shows_addresses_but_cannot_release() -> None:
    """The web pages' view (DESIGN.md rule 5): the same proofs as the vault's, and no way to the WIF."""
    validator = RecordingValidator(None)
    vault = Vault(SECRET, validator)
    prover = vault.prover()
    assert (prover.address_p2wpkh, prover.address_p2pkh) == (vault.address_p2wpkh, vault.address_p2pkh)
    proof = prover.proof("from the web", NOW)
    assert verify_message(vault.address_p2wpkh, proof.message, proof.signature_p2wpkh)
    assert not hasattr(prover, "release")
    with pytest.raises(AttributeError):
        prover.release = vault.release  # type: ignore[attr-defined]  # slots: nor can one be attached
    assert not hasattr(prover, "__dict__")
    assert SECRET.hex() not in repr(prover)
    assert validator.calls == []  # proving never ran the validator: nothing was released
