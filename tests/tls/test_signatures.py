"""Handshake signatures: every scheme we make verifies; mismatched keys, curves, PKCS#1 in TLS 1.3 and
SHA-1 are refused: a scheme that is not allowed or does not fit the key as wrong-signature-scheme
(illegal_parameter), a signature that does not verify as bad-signature (decrypt_error)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from outcomes.category import Category
from tests.tls.pki import make_key
from tls.constants import SignatureScheme
from tls.errors import ProtocolError
from tls.signatures import (
    HANDSHAKE_SCHEMES_12,
    HANDSHAKE_SCHEMES_13,
    choose_scheme,
    schemes_for_key,
    sign,
    verify,
)
from tls.x509 import RsaPssPublicKey


@pytest.mark.parametrize("kind", ["p256", "p384", "ed25519", "rsa"])
@pytest.mark.parametrize("tls13", [True, False])
def test_every_scheme_we_make_verifies(kind: str, tls13: bool) -> None:
    key = make_key(kind)
    allowed = HANDSHAKE_SCHEMES_13 if tls13 else HANDSHAKE_SCHEMES_12
    for scheme in schemes_for_key(key, tls13):
        signature = sign(key, scheme, b"transcript")
        verify(key.public_key(), scheme, signature, b"transcript", allowed)
        with pytest.raises(ProtocolError) as info:
            verify(key.public_key(), scheme, signature, b"transcripT", allowed)
        assert info.value.category is Category.BAD_SIGNATURE


def test_rsa_pkcs1_is_not_accepted_in_tls13_certificate_verify() -> None:
    key = make_key("rsa")
    assert all(s not in schemes_for_key(key, True) for s in (0x0401, 0x0501, 0x0601))
    signature = sign(key, SignatureScheme.RSA_PKCS1_SHA256, b"data")
    verify(key.public_key(), SignatureScheme.RSA_PKCS1_SHA256, signature, b"data", HANDSHAKE_SCHEMES_12)
    with pytest.raises(ProtocolError) as info:
        verify(key.public_key(), SignatureScheme.RSA_PKCS1_SHA256, signature, b"data", HANDSHAKE_SCHEMES_13)
    assert info.value.category is Category.WRONG_SIGNATURE_SCHEME


def test_sha1_is_never_accepted() -> None:
    key = make_key("p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(b"data", ec.ECDSA(hashes.SHA1()))
    with pytest.raises(ProtocolError):
        verify(key.public_key(), SignatureScheme.ECDSA_SHA1, signature, b"data", HANDSHAKE_SCHEMES_12)


def test_key_type_must_fit_the_scheme() -> None:
    ed = make_key("ed25519")
    signature = sign(ed, SignatureScheme.ED25519, b"data")
    rsa_key = make_key("rsa")
    with pytest.raises(ProtocolError) as info:
        verify(rsa_key.public_key(), SignatureScheme.ED25519, signature, b"data", HANDSHAKE_SCHEMES_13)
    assert info.value.category is Category.WRONG_SIGNATURE_SCHEME
    with pytest.raises(ProtocolError):
        verify(ed.public_key(), SignatureScheme.RSA_PSS_RSAE_SHA256, signature, b"data", HANDSHAKE_SCHEMES_13)


def test_ecdsa_curve_binding_only_in_tls13() -> None:
    """ecdsa_secp256r1_sha256 names the curve in TLS 1.3 but only the hash in TLS 1.2."""
    key = make_key("p384")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    verify(key.public_key(), SignatureScheme.ECDSA_SECP256R1_SHA256, signature, b"data", HANDSHAKE_SCHEMES_12,
           curve_bound=False)
    with pytest.raises(ProtocolError) as info:
        verify(key.public_key(), SignatureScheme.ECDSA_SECP256R1_SHA256, signature, b"data", HANDSHAKE_SCHEMES_13)
    assert info.value.category is Category.WRONG_SIGNATURE_SCHEME


def test_choose_scheme_follows_the_peer() -> None:
    rsa_key = make_key("rsa")
    assert choose_scheme(rsa_key, (0x0805, 0x0804), True) == 0x0804  # our preference among what is offered
    assert choose_scheme(rsa_key, (0x0401,), True) is None
    assert choose_scheme(rsa_key, (0x0401,), False) == 0x0401
    assert choose_scheme(make_key("p384"), (0x0403,), True) is None


def test_rsa_pss_pss_is_refused_for_rsa_encryption_keys() -> None:
    """An rsaEncryption certificate key makes rsa_pss_rsae_* only: rsa_pss_pss_* does not fit it."""
    key = make_key("rsa")
    signature = sign(key, SignatureScheme.RSA_PSS_RSAE_SHA256, b"data")
    with pytest.raises(ProtocolError) as info:
        verify(key.public_key(), SignatureScheme.RSA_PSS_PSS_SHA256, signature, b"data", HANDSHAKE_SCHEMES_13)
    assert info.value.category is Category.WRONG_SIGNATURE_SCHEME


_RSA_KEY = make_key("rsa")
S = SignatureScheme
PSS_PSS = (S.RSA_PSS_PSS_SHA256, S.RSA_PSS_PSS_SHA384, S.RSA_PSS_PSS_SHA512)


@pytest.mark.parametrize(("restriction", "schemes"), [
    (RsaPssPublicKey(_RSA_KEY.public_key()), PSS_PSS),  # type: ignore[arg-type]
    (RsaPssPublicKey(_RSA_KEY.public_key(), "sha384", 48), (S.RSA_PSS_PSS_SHA384,)),  # type: ignore[arg-type]
    (RsaPssPublicKey(_RSA_KEY.public_key(), "sha256", 33), ()),  # type: ignore[arg-type]  # salt > hash
])
@pytest.mark.parametrize("tls13", [True, False])
def test_pss_key_makes_only_rsa_pss_pss_within_its_restrictions(restriction: RsaPssPublicKey,
                                                                 schemes: tuple[int, ...], tls13: bool) -> None:
    assert schemes_for_key(_RSA_KEY, tls13, restriction) == schemes
    for scheme in schemes:
        signature = sign(_RSA_KEY, scheme, b"transcript")
        verify(restriction, scheme, signature, b"transcript", HANDSHAKE_SCHEMES_13 if tls13 else HANDSHAKE_SCHEMES_12)
    offered = (S.RSA_PSS_RSAE_SHA256, S.RSA_PKCS1_SHA256, *PSS_PSS)
    assert choose_scheme(_RSA_KEY, offered, tls13, restriction) == (schemes[0] if schemes else None)


@pytest.mark.parametrize(("scheme", "key_hash", "reason"), [
    (S.RSA_PSS_RSAE_SHA256, None, "not an rsaEncryption key"),
    (S.RSA_PKCS1_SHA256, None, "not an rsaEncryption key"),
    (S.RSA_PSS_PSS_SHA256, "sha384", "outside the RSASSA-PSS key's restrictions"),
    (S.RSA_PSS_PSS_SHA512, "sha256", "outside the RSASSA-PSS key's restrictions"),
])
def test_pss_key_refuses_signatures_it_may_not_make(scheme: int, key_hash: str | None, reason: str) -> None:
    """The RSA maths would verify in each case; the certificate key's type or parameters forbid it."""
    assert isinstance(_RSA_KEY, rsa.RSAPrivateKey)
    pss_key = RsaPssPublicKey(_RSA_KEY.public_key(), key_hash, 0)
    signature = sign(_RSA_KEY, scheme, b"data")
    control = RsaPssPublicKey(_RSA_KEY.public_key()) if scheme in PSS_PSS else _RSA_KEY.public_key()
    verify(control, scheme, signature, b"data", HANDSHAKE_SCHEMES_12)  # a valid signature for some key
    with pytest.raises(ProtocolError) as info:
        verify(pss_key, scheme, signature, b"data", HANDSHAKE_SCHEMES_12)
    assert info.value.category is Category.WRONG_SIGNATURE_SCHEME
    assert reason in str(info.value)


def test_pss_pss_signature_that_does_not_verify() -> None:
    assert isinstance(_RSA_KEY, rsa.RSAPrivateKey)
    signature = bytearray(sign(_RSA_KEY, S.RSA_PSS_PSS_SHA256, b"data"))
    signature[-1] ^= 1
    with pytest.raises(ProtocolError) as info:
        verify(RsaPssPublicKey(_RSA_KEY.public_key()), S.RSA_PSS_PSS_SHA256, bytes(signature), b"data",
               HANDSHAKE_SCHEMES_13)
    assert info.value.category is Category.BAD_SIGNATURE
