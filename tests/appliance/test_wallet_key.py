"""appliance.wallet_key: the signature OpenSSL makes, normalised to low s and given its recovery id, must be
exactly what libsecp256k1 (coincurve, a test-only reference) makes for the same key and digest (both use
RFC 6979 nonces, so the bytes, not only their validity, can be compared); and a signature that does not
verify must never come out."""

from __future__ import annotations

import coincurve
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import bitcoin, secp256k1
from appliance.vault import Vault
from appliance.wallet_key import InvalidWalletKeyError, SignatureCheckError, WalletKey, public_key
from tests.appliance.test_vault import NOW, SECRET, RecordingValidator

SECRETS = st.integers(min_value=1, max_value=secp256k1.N - 1).map(lambda k: k.to_bytes(32, "big"))
DIGESTS = st.binary(min_size=32, max_size=32)
OPENSSL_ECDSA = ec.ECDSA(utils.Prehashed(hashes.SHA256()), deterministic_signing=True)


@settings(max_examples=80, deadline=None)
@given(secret=SECRETS, digest=DIGESTS)
def test_the_recoverable_signature_is_libsecp256k1s_byte_for_byte(secret: bytes, digest: bytes) -> None:
    compact, recid = WalletKey(secret).sign_recoverable(digest)
    assert compact + bytes([recid]) == coincurve.PrivateKey(secret).sign_recoverable(digest, hasher=None)


@settings(max_examples=30, deadline=None)
@given(digests=st.lists(DIGESTS, min_size=1, max_size=8))
def test_one_key_many_messages_low_s_and_recoverable(digests: list[bytes]) -> None:
    """The vault's case: one key, one table, many proofs. Each s is low; each id recovers our public key."""
    key = WalletKey(SECRET)
    for digest in digests:
        compact, recid = key.sign_recoverable(digest)
        assert 0 < int.from_bytes(compact[32:], "big") <= secp256k1.N // 2
        recovered = coincurve.PublicKey.from_signature_and_message(compact + bytes([recid]), digest, hasher=None)
        assert recovered.format(compressed=True) == key.public
    assert key.public_table() is key.public_table()  # built once


def test_both_parities_and_a_high_s_from_openssl_occur() -> None:
    """Guards the property tests: over these digests OpenSSL returned some s > n/2 (so normalising was
    exercised) and both recovery id parities came out."""
    key = WalletKey(SECRET)
    ids, high = set(), 0
    for index in range(24):
        digest = bitcoin.sha256d(index.to_bytes(2, "big"))
        _, s = utils.decode_dss_signature(key._key.sign(digest, OPENSSL_ECDSA))
        high += s > secp256k1.N // 2
        ids.add(key.sign_recoverable(digest)[1])
    assert high > 0
    assert ids >= {0, 1}


def test_the_public_key_and_the_secret_round_trip() -> None:
    key = WalletKey(SECRET)
    assert key.public == public_key(SECRET) == coincurve.PrivateKey(SECRET).public_key.format(compressed=True)
    assert key.secret() == SECRET
    assert SECRET.hex() not in repr(key)


@pytest.mark.parametrize(
    "secret",
    [bytes(32), secp256k1.N.to_bytes(32, "big"), (secp256k1.N + 1).to_bytes(32, "big"), b"\xff" * 32, b"\x01" * 31],
    ids=["zero", "n", "n+1", "all-ones", "short"],
)
def test_a_secret_that_is_not_a_key_is_refused(secret: bytes) -> None:
    with pytest.raises(InvalidWalletKeyError):
        WalletKey(secret)
    with pytest.raises(InvalidWalletKeyError):
        public_key(secret)


def test_the_largest_key_is_accepted() -> None:
    top = (secp256k1.N - 1).to_bytes(32, "big")
    assert public_key(top) == coincurve.PrivateKey(top).public_key.format(compressed=True)


def test_a_digest_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        WalletKey(SECRET).sign_recoverable(b"\x01" * 31)


class _Faulty:
    """OpenSSL's key as a fault (a glitch, a bit flipped in memory) would show it: signs, but wrongly."""

    def __init__(self, inner: ec.EllipticCurvePrivateKey, fault: str) -> None:
        self.inner, self.fault = inner, fault

    def sign(self, data: bytes, algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if self.fault == "other-key":
            return ec.derive_private_key(7, ec.SECP256K1()).sign(data, algorithm)
        r, s = utils.decode_dss_signature(self.inner.sign(data, algorithm))
        if self.fault == "r":
            r ^= 1 << 17
        else:
            s = (s + 1) % secp256k1.N
        return utils.encode_dss_signature(r, s)


@pytest.mark.parametrize("fault", ["r", "s", "other-key"])
def test_a_faulty_signature_raises_and_no_proof_is_made(fault: str) -> None:
    vault = Vault(SECRET, RecordingValidator(None))
    key = vault._key
    object.__setattr__(key, "_key", _Faulty(key._key, fault))
    with pytest.raises(SignatureCheckError):
        key.sign_recoverable(bitcoin.sha256d(b"x"))
    with pytest.raises(SignatureCheckError):
        vault.proof("challenge", NOW)
