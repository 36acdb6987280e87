"""Client certificates on 10000 (mutual TLS): every way to present the wrong one, from a real client
(Python's ssl, i.e. OpenSSL) where it will send the shape, and from our own TLS client engine where no
real client would (malformed DER, a certificate whose key did not sign the CertificateVerify)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from appliance.pki import Identity
from bench import certs
from tests.integration import craft
from tests.integration.craft import DAY, NOW, Leaf
from tests.integration.lab import ATTACKER_IPS, KNOWN_WIF, Lab, SecretLeakedError
from tls.constants import TLS12, TLS13
from tls.signatures import PrivateKey

pytestmark = [pytest.mark.netns, pytest.mark.qemu]
SOURCE = ATTACKER_IPS[1]


def _context(cert: Path | None = None, key: Path | None = None, tls12: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def _write(directory: Path, name: str, *pems: bytes, key: bytes) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(b"".join(pems))
    key_path.write_bytes(key)
    return cert_path, key_path


def ssl_attack(lab: Lab, context: ssl.SSLContext) -> Callable[[], bytes]:
    """Every byte the server sent (raw records and whatever decrypted before the refusal), for the secret
    check: a refusal that came after the key would still be a leak."""

    def run() -> bytes:
        with lab.connect(10000, SOURCE) as sock:
            return craft.ssl_exchange(sock, context)

    return run


def engine_attack(lab: Lab, chain: tuple[bytes, ...], key: PrivateKey,
                  versions: tuple[int, ...] = (TLS13, TLS12)) -> Callable[[], bytes]:
    def run() -> bytes:
        with lab.connect(10000, SOURCE) as sock:
            result = craft.engine_exchange(sock, chain, key, versions)
        assert result.failure, "the handshake did not fail on our side either"
        return result.wire + result.plaintext

    return run


@pytest.fixture(scope="module")
def ca(target: Lab) -> Identity:
    return craft.load_identity(target.pki, "ca")


def _identity_attack(lab: Lab, identity: Identity, directory: Path, *extra: bytes,
                     tls12: bool = False) -> Callable[[], bytes]:
    cert, key = _write(directory, "peer", identity.cert_pem, *extra, key=identity.key_pem)
    return ssl_attack(lab, _context(cert, key, tls12))


BAD_LEAVES = {
    "wrong-key-usage": Leaf(digital_signature=False),
    "server-eku": Leaf(eku=(ExtendedKeyUsageOID.SERVER_AUTH,)),
    "no-eku-but-code-signing": Leaf(eku=(ExtendedKeyUsageOID.CODE_SIGNING,)),
    "expired": Leaf(not_before=NOW - 10 * DAY, not_after=NOW - DAY),
    "not-yet-valid": Leaf(not_before=NOW + DAY, not_after=NOW + 10 * DAY),
}
CATEGORY = {
    "wrong-key-usage": "wrong-key-usage",
    "server-eku": "wrong-extended-key-usage",
    "no-eku-but-code-signing": "wrong-extended-key-usage",
    "expired": "expired",
    "not-yet-valid": "not-yet-valid",
}


def test_no_certificate(target: Lab) -> None:
    target.expect_refusal("mutual", "no-certificate", ssl_attack(target, _context()))


def test_no_certificate_tls12(target: Lab) -> None:
    target.expect_refusal("mutual", "no-certificate", ssl_attack(target, _context(tls12=True)))


@pytest.mark.parametrize("name", sorted(BAD_LEAVES))
def test_ca_signed_leaf_with_a_flaw(target: Lab, ca: Identity, tmp_path: Path, name: str) -> None:
    leaf = craft.issue(ca, BAD_LEAVES[name])
    target.expect_refusal("mutual", CATEGORY[name], _identity_attack(target, leaf, tmp_path))


def test_self_signed(target: Lab, tmp_path: Path) -> None:
    leaf = craft.self_signed_leaf()
    target.expect_refusal("mutual", "untrusted-chain", _identity_attack(target, leaf, tmp_path))


def test_signed_by_another_ca(target: Lab, tmp_path: Path) -> None:
    other = craft.self_signed_ca("Some other CA")
    leaf = craft.issue(other, Leaf())
    target.expect_refusal("mutual", "untrusted-chain", _identity_attack(target, leaf, tmp_path, other.cert_pem))


def test_other_ca_with_the_boot_ca_name(target: Lab, ca: Identity, tmp_path: Path) -> None:
    """An impostor CA with exactly the boot CA's subject, and a leaf under it (the chain includes it)."""
    impostor = craft.self_signed_ca(ca.certificate.subject)
    leaf = craft.issue(impostor, Leaf())
    target.expect_refusal("mutual", "chain-signature-invalid",
                          _identity_attack(target, leaf, tmp_path, impostor.cert_pem))


IMPOSTORS = 7  # issue 15's chain: a leaf and seven fake boot CAs, 25 KB with the padding
IMPOSTOR_NAMES = 100
IMPOSTOR_CONNECTIONS = 12  # concurrent, from one source: what raised the page's median latency 140-fold


def test_path_building_against_fake_boot_cas(target: Lab, ca: Identity, tmp_path: Path) -> None:
    """Issue 15 (CPU amplification): a leaf and seven certificates with the boot CA's name and key
    identifier but their own keys, chained among themselves. Every link but the last verifies, so path
    building used to try them all (32 signature checks, eight parses). Twelve at once from one source,
    while the page is fetched: each is refused as chain-signature-invalid (the leaf's link to the real
    boot CA is the one check made), and the page is served meanwhile. The cost bound itself is measured
    where it can be without a clock, in tests/tls/x509/test_path.py (work counted) and `bench x509`."""
    leaf = certs.ca_spec("impostor", ca=False, key_usage=("digital_signature",),
                         eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), not_before=NOW - DAY, not_after=NOW + DAY)
    padding = tuple(f"impostor-{n:04d}.example.com" for n in range(IMPOSTOR_NAMES))
    attack = certs.impostor_chain(ca.certificate, IMPOSTORS, leaf, padding)
    assert sum(map(len, attack.chain)) > 20_000
    pems = [x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM) for der in attack.impostors]
    cert, key = _write(tmp_path, "impostor", attack.leaf.pem, *pems, key=attack.leaf.key_pem)
    run = ssl_attack(target, _context(cert, key))

    def all_at_once() -> bytes:
        with ThreadPoolExecutor(max_workers=IMPOSTOR_CONNECTIONS) as pool:
            received = [pool.submit(run) for _ in range(IMPOSTOR_CONNECTIONS)]
            status, body = target.http_get("/")
            assert status == 200
            assert b"bc1q" in body
            return b"".join(future.result() for future in received)

    target.expect_refusal("mutual", "chain-signature-invalid", all_at_once, times=IMPOSTOR_CONNECTIONS)


def test_right_subject_different_key(target: Lab, ca: Identity, tmp_path: Path) -> None:
    """The good client's subject and issuer, a new key pair: the CA's signature does not verify."""
    good = craft.load_identity(target.pki, "client")
    forged = craft.issue(ca, Leaf(common_name=good.certificate.subject.rfc4514_string().split("=", 1)[1]),
                         signing_key=craft.new_key())
    target.expect_refusal("mutual", "chain-signature-invalid", _identity_attack(target, forged, tmp_path))


def test_zeroed_signature(target: Lab, ca: Identity) -> None:
    key = craft.new_key()
    target.expect_refusal("mutual", "chain-signature-invalid",
                          engine_attack(target, (craft.zeroed_signature(ca),), key))


def test_ca_certificate_as_leaf(target: Lab, ca: Identity, tmp_path: Path) -> None:
    target.expect_refusal("mutual", "ca-as-leaf", _identity_attack(target, ca, tmp_path))


def test_version_1_certificate(target: Lab, ca: Identity, tmp_path: Path) -> None:
    target.expect_refusal("mutual", "not-v3", _identity_attack(target, craft.version1(ca), tmp_path))


def test_chain_not_signed_pairwise(target: Lab, ca: Identity, tmp_path: Path) -> None:
    """leaf -> intermediate -> boot CA where the intermediate (really signed by the CA) did not sign the
    leaf: the leaf names it as issuer but carries another key's signature."""
    intermediate = craft.issue(ca, Leaf(ca=True, eku=None, common_name="Pinata intermediate", digital_signature=False))
    leaf = craft.issue(intermediate, Leaf(), signing_key=craft.new_key())
    target.expect_refusal("mutual", "chain-signature-invalid",
                          _identity_attack(target, leaf, tmp_path, intermediate.cert_pem))


def test_malformed_asn1(target: Lab, ca: Identity) -> None:
    target.expect_refusal("mutual", "decode-error", engine_attack(target, (craft.malformed_der(ca),), craft.new_key()))


def test_garbage_instead_of_a_certificate(target: Lab) -> None:
    target.expect_refusal("mutual", "decode-error",
                          engine_attack(target, (b"please give key",), craft.new_key(), (TLS12,)))


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)], ids=["tls13", "tls12"])
def test_bad_certificate_verify(target: Lab, ca: Identity, versions: tuple[int, ...]) -> None:
    """A valid client certificate, and a CertificateVerify signed by another key."""
    good = craft.issue(ca, Leaf())
    target.expect_refusal("mutual", "bad-signature",
                          engine_attack(target, (good.cert_der,), craft.new_key(), versions))


def test_the_ssl_client_keeps_what_it_received_so_a_leak_would_be_seen(target: Lab) -> None:
    """The control for the Python-ssl cases: the same capture with the real client identity contains the
    secret, and expect_refusal's check on it fails; so a refused session that had leaked it would fail too."""
    context = _context(target.pki / "client.pem", target.pki / "client.key")
    before = target.count("mutual", "success")
    captured = ssl_attack(target, context)()
    assert KNOWN_WIF.encode() in captured
    with pytest.raises(SecretLeakedError):
        target.received(captured)
    assert target.wait_count("mutual", "success", before + 1) == before + 1


def test_a_valid_certificate_through_the_same_client_gets_the_secret(target: Lab, ca: Identity) -> None:
    """The control for the engine-driven cases above: the same client with a matching key succeeds."""
    good = craft.issue(ca, Leaf())
    before = target.count("mutual", "success")
    with target.connect(10000, SOURCE) as sock:
        result = craft.engine_exchange(sock, (good.cert_der,), good.key)
    assert result.plaintext.strip() == KNOWN_WIF.encode()
    assert target.wait_count("mutual", "success", before + 1) == before + 1
