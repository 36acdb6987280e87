"""A server with several credentials (issue 15): an ECDSA and an RSA certificate side by side, chosen per
ClientHello. ECDSA is preferred whenever the client can verify it; a client that verifies RSA only gets RSA
instead of a refusal (it used to be refused: every certificate the appliance served was ECDSA)."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tests.tls.pki import ca, client_config, server_config, server_leaf
from tests.tls.pump import pump
from tests.tls.refusal import failure_of
from tests.tls.test_handshake import complete
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.config import Credential
from tls.constants import TLS12, TLS13, CipherSuite
from tls.constants import SignatureScheme as S
from tls.messages import Certificate13, parse_certificate13, serialize_certificate13
from tls.server import ServerConnection
from tls.signatures import first_offered, schemes_for_key

RSA_ONLY = (S.RSA_PSS_RSAE_SHA256, S.RSA_PKCS1_SHA256)
ECDSA_ONLY = (S.ECDSA_SECP256R1_SHA256,)


def both() -> ServerConnection:
    rsa_leaf = server_leaf("rsa")
    return ServerConnection(server_config(more_credentials=(Credential.of((rsa_leaf.der, ca().der), rsa_leaf.key),)))


def offering(monkeypatch: pytest.MonkeyPatch, schemes: tuple[int, ...]) -> None:
    monkeypatch.setattr("tls.client.offered_schemes", lambda tls12: schemes)


@pytest.mark.parametrize("version", [TLS13, TLS12])
@pytest.mark.parametrize(("schemes", "kind"), [(RSA_ONLY, "rsa"), (ECDSA_ONLY, "p256"),
                                               (RSA_ONLY + ECDSA_ONLY, "p256")])
def test_the_server_picks_the_certificate_the_client_can_verify(monkeypatch: pytest.MonkeyPatch, version: int,
                                                                schemes: tuple[int, ...], kind: str) -> None:
    offering(monkeypatch, schemes)
    c, s = ClientConnection(client_config(versions=(version,))), both()
    client_events, server_events = pump(c, s)
    done = complete(client_events)
    complete(server_events)
    assert done.peer_chain[0] == server_leaf(kind).der
    assert done.peer_validated


def test_tls12_suites_decide_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TLS 1.2 client that offers only ECDHE_RSA suites gets the RSA certificate, whatever it signs."""
    rsa_suites = (CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,)
    c, s = ClientConnection(client_config(versions=(TLS12,), suites=rsa_suites)), both()
    client_events, _ = pump(c, s)
    assert complete(client_events).peer_chain[0] == server_leaf("rsa").der


def test_rsa_only_client_against_an_ecdsa_only_server_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one credential the refusal is what it always was (the preferred credential's)."""
    offering(monkeypatch, RSA_ONLY)
    c, s = ClientConnection(client_config()), ServerConnection(server_config())
    _, server_events = pump(c, s)
    failure = failure_of(server_events)
    assert (failure.alert, failure.category) == (AlertDescription.HANDSHAKE_FAILURE,
                                                 Category.NO_SHARED_SIGNATURE_ALGORITHM)


RSA_PSS_SCHEMES = (S.RSA_PSS_RSAE_SHA256, S.RSA_PSS_RSAE_SHA384, S.RSA_PSS_RSAE_SHA512)
EXPECTED_SCHEMES = {  # (TLS 1.3, TLS 1.2), our preference first: RFC 8446 §4.4.3 allows no PKCS#1 v1.5 in 1.3
    "p256": ((S.ECDSA_SECP256R1_SHA256,), (S.ECDSA_SECP256R1_SHA256,)),
    "p384": ((S.ECDSA_SECP384R1_SHA384,), (S.ECDSA_SECP384R1_SHA384,)),
    "ed25519": ((S.ED25519,), (S.ED25519,)),
    "rsa": (RSA_PSS_SCHEMES, (*RSA_PSS_SCHEMES, S.RSA_PKCS1_SHA256, S.RSA_PKCS1_SHA384, S.RSA_PKCS1_SHA512)),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_SCHEMES))
def test_what_a_credential_fixes_is_what_each_handshake_would_derive(kind: str) -> None:
    """The scheme lists and the Certificate body are worked out once per credential: each key type's schemes,
    and the chain's Certificate message, byte for byte."""
    leaf = server_leaf(kind)
    credential = Credential.of((leaf.der, ca().der), leaf.key)
    assert (credential.schemes13, credential.schemes12) == EXPECTED_SCHEMES[kind]
    assert credential.schemes13 == schemes_for_key(leaf.key, True, credential.pss_key)  # the handshake's own
    assert credential.certificate13 == serialize_certificate13(Certificate13(b"", ((leaf.der, ()), (ca().der, ()))))
    assert parse_certificate13(credential.certificate13, 10).chain == (leaf.der, ca().der)


def test_first_offered_follows_our_preference_not_the_peers() -> None:
    ours = (S.RSA_PSS_RSAE_SHA256, S.RSA_PSS_RSAE_SHA384)
    assert first_offered(ours, (S.RSA_PSS_RSAE_SHA384, S.RSA_PSS_RSAE_SHA256)) == S.RSA_PSS_RSAE_SHA256
    assert first_offered(ours, (S.ECDSA_SECP256R1_SHA256, S.RSA_PSS_RSAE_SHA384)) == S.RSA_PSS_RSAE_SHA384
    assert first_offered(ours, ECDSA_ONLY) is None
