"""X.509 speed: certificates parsed per second and chains validated per second, against `cryptography`.

The reference for parsing is `cryptography.x509.load_der_x509_certificate` plus reading the extensions
(our parse decodes every extension, so the reference must too). The reference for validation is
`cryptography.x509.verification` (its Rust web-PKI verifier) on the same leaf + intermediate + root chain,
given DER each time as a TLS handshake would (both sides parse the peer's certificates per call; the
trust store is built once on both sides, as our anchor cache does).

Every parse and validation gets another leaf (LEAVES of them, same key, random serials, taken in turn by
both sides), as handshakes from different peers would: whatever may be kept by a certificate's bytes
(the anchors are, by design) cannot serve a repeated leaf here, because real traffic does not repeat it.
The intermediate is the same in every call, as a CA's intermediate is in real traffic.

The impostor figure is an attack, measured against our own normal chain in the same run (issue 15): a leaf
plus seven certificates that copy the trust anchor's name and key identifier but hold other keys (about
3.5 KB each, padded with names), signed in a chain among themselves. Without the CA key nothing can make
it pass; what matters is what its refusal costs. Value and reference are milliseconds per validation, so
the ratio is how many normal handshakes one refusal costs (the goal is at most 3). The forged-intermediates
figure is the other shape of the same attack: eleven padded CA certificates under the attacker's own name,
all holding the key that signed the leaf (so each verifies it) and all claiming the anchor as their issuer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification

from bench import certs
from bench.harness import Figure
from bench.timing import interleaved_rates
from tls.x509 import PeerName, Purpose, X509Error, parse_certificate, validate

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HOST = "bench.example.com"
PrivateKey = certs.PrivateKey


BEFORE, AFTER = NOW - timedelta(days=1), NOW + timedelta(days=90)
_VALID: dict[str, object] = {"not_before": BEFORE, "not_after": AFTER, "serial": None}
LEAF = certs.Spec(HOST, dns=(HOST,), not_before=BEFORE, not_after=AFTER, serial=None)


LEAVES = 256
Pair = tuple[Callable[[], object], Callable[[], object]]


@dataclass(frozen=True)
class Chain:
    """LEAVES leaves under one intermediate under one root, as DER."""

    leaves: tuple[bytes, ...]
    inter: bytes
    root: bytes

    def leaf_source(self) -> Callable[[], bytes]:
        """The leaves in turn, forever: one source per measured function, so both sides see the same ones."""
        return itertools.cycle(self.leaves).__next__


def _chain(make_key: Callable[[], PrivateKey]) -> Chain:
    root = certs.issue(certs.ca_spec("Bench Root", **_VALID), key=make_key())
    inter = certs.issue(certs.ca_spec("Bench Intermediate", **_VALID), issuer=root, key=make_key())
    key = make_key()
    leaves = tuple(certs.issue(LEAF, issuer=inter, key=key).der for _ in range(LEAVES))
    assert len(set(leaves)) == LEAVES  # random serials: no two alike
    return Chain(leaves, inter.der, root.der)


def _validation_pair(chain: Chain) -> Pair:
    inter, root = chain.inter, chain.root
    peer = PeerName("DNS", HOST)
    our_leaf, reference_leaf = chain.leaf_source(), chain.leaf_source()

    def ours() -> object:
        return validate([our_leaf(), inter], anchors=[root], purpose=Purpose.SERVER_AUTH, name=peer, time=NOW)

    store = verification.Store([x509.load_der_x509_certificate(root)])
    verifier = verification.PolicyBuilder().store(store).time(NOW).build_server_verifier(x509.DNSName(HOST))

    def reference() -> object:
        leaf = x509.load_der_x509_certificate(reference_leaf())
        return verifier.verify(leaf, [x509.load_der_x509_certificate(inter)])

    ours()  # both must accept the chain, or the comparison is meaningless
    reference()
    return ours, reference


IMPOSTORS = 7
IMPOSTOR_NAMES = 100  # DNS names per impostor: about 3.5 KB each, 25 KB for the chain as reported
IMPOSTOR_PADDING = tuple(f"impostor-{n:04d}.bench.example.com" for n in range(IMPOSTOR_NAMES))


def _impostor_spec(subject: x509.Name, issuer: x509.Name, key_id: bytes, **changes: object) -> certs.Spec:
    """A CA certificate claiming `key_id` as its issuer's key, padded with `IMPOSTOR_NAMES` DNS names."""
    return certs.ca_spec(subject, issuer_name=issuer, aki_key_id=key_id, san=True, dns=IMPOSTOR_PADDING, **_VALID,
                         **changes)


def _leaf_under(issuer: x509.Name, key: PrivateKey, key_id: bytes) -> bytes:
    spec = replace(LEAF, issuer_name=issuer, aki_key_id=key_id, ski=False)
    return certs.issue(spec, key=certs.new_key(), signing_key=key).der


def _forged_intermediates(root_der: bytes) -> list[bytes]:
    """Leaf + 11 CA certificates named "Forged CA", one attacker key, issuer claimed: the anchor."""
    root = x509.load_der_x509_certificate(root_der)
    root_id = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    key = certs.new_key()
    own_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    name = certs.name("Forged CA")
    spec = _impostor_spec(name, root.subject, root_id)
    forged = [certs.issue(spec, key=key).der for _ in range(11)]
    return [_leaf_under(name, key, own_id.digest), *forged]


def _impostor_chain(root_der: bytes) -> list[bytes]:
    """Leaf + `IMPOSTORS` padded certificates named like the anchor, with its key identifier, chained among
    themselves (bench.certs.impostor_chain): every link but the last one verifies."""
    return certs.impostor_chain(x509.load_der_x509_certificate(root_der), IMPOSTORS, LEAF, IMPOSTOR_PADDING).chain


def _attack_pair(chain: Chain, make: Callable[[bytes], list[bytes]]) -> Pair:
    """(attack chain refused, normal chain accepted), both against the same anchor."""
    inter, root = chain.inter, chain.root
    leaf = chain.leaf_source()
    peer = PeerName("DNS", HOST)
    impostor = make(root)

    def attack() -> object:
        try:
            validate(impostor, anchors=[root], purpose=Purpose.SERVER_AUTH, name=peer, time=NOW)
        except X509Error as error:
            return error
        raise AssertionError("the impostor chain was accepted")

    def normal() -> object:
        return validate([leaf(), inter], anchors=[root], purpose=Purpose.SERVER_AUTH, name=peer, time=NOW)

    attack()
    normal()
    return attack, normal


def run(quick: bool) -> dict[str, Figure]:
    seconds = 0.3 if quick else 3.0
    p256 = _chain(lambda: ec.generate_private_key(ec.SECP256R1()))
    rsa2048 = _chain(lambda: rsa.generate_private_key(65537, 2048))
    figures: dict[str, Figure] = {}

    our_leaf, reference_leaf = p256.leaf_source(), p256.leaf_source()

    def parse_ours() -> object:
        return parse_certificate(our_leaf())

    def parse_reference() -> object:
        certificate = x509.load_der_x509_certificate(reference_leaf())
        return list(certificate.extensions)

    ours_rate, reference_rate = interleaved_rates(parse_ours, parse_reference, seconds=seconds)
    figures["certificates parsed (P-256 leaf)"] = Figure(ours_rate, "certs/s", reference_rate)
    for label, chain in (("P-256", p256), ("RSA-2048", rsa2048)):
        ours, reference = _validation_pair(chain)
        ours_rate, reference_rate = interleaved_rates(ours, reference, seconds=seconds)
        figures[f"chains validated ({label}, leaf+intermediate+root)"] = Figure(ours_rate, "chains/s", reference_rate)
    attacks = (
        (f"impostor chain refused (leaf+{IMPOSTORS} fake anchors) vs normal P-256 chain", _impostor_chain),
        ("forged intermediates refused (leaf+11, one key) vs normal P-256 chain", _forged_intermediates),
    )
    for label, make in attacks:
        attack, normal = _attack_pair(p256, make)
        attack_rate, normal_rate = interleaved_rates(attack, normal, seconds=seconds)
        figures[label] = Figure(1000 / attack_rate, "ms/chain", 1000 / normal_rate)
    return figures
