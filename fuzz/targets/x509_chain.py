"""Chain validation as the appliance does it: the vault's check (appliance/validation.py BootCaValidator, the
boot CA as the only anchor), and `tls.x509.validate` against a root with an intermediate (fuzz/fixtures.py).

Chunks: CERTIFICATE, one DER certificate of the chain (leaf first); SETTINGS, whose first byte picks the
purpose (bit 0) and the anchor (bit 1: the Ed25519 root instead of the boot CA).

What must hold: only the typed refusal escapes (PeerRejectedError, X509Error); an accepted chain's leaf is for
the key of a leaf the anchor's hierarchy issued for that purpose (nobody else can get a chain past the
signature checks), and the path ends at the anchor within the path-length limit.
"""

from __future__ import annotations

from appliance.validation import PeerRejectedError
from fuzz import chunks
from fuzz.errors import require
from fuzz.fixtures import bench_chain, boot, spki
from fuzz.sources import NOW
from fuzz.tls_keys import leaf_spki
from tls import x509

CERTIFICATE, SETTINGS = range(2)


def _boot(chain: tuple[bytes, ...], purpose: x509.Purpose) -> None:
    fixture = boot()
    try:
        fixture.validator(chain, purpose, NOW)
    except PeerRejectedError:
        return
    holders = fixture.server_spkis if purpose is x509.Purpose.SERVER_AUTH else frozenset({fixture.client_spki})
    require(leaf_spki(chain) in holders, "the vault accepted a chain for a key the CA issued no such leaf for")


def _bench(chain: tuple[bytes, ...], purpose: x509.Purpose) -> None:
    hierarchy = bench_chain()
    try:
        path = x509.validate(chain, anchors=(hierarchy.root.der,), purpose=purpose, name=None, time=NOW)
    except x509.X509Error:
        return
    leaf = hierarchy.server if purpose is x509.Purpose.SERVER_AUTH else hierarchy.client
    require(leaf_spki(chain) == spki(leaf.der), "validated a chain for a key the hierarchy issued no such leaf for")
    require(path.anchor.der == hierarchy.root.der, "the path does not end at the anchor")
    require(len(path.certificates) <= x509.DEFAULT_LIMITS.max_path_length, "path longer than the limit")


def fuzz_one(data: bytes) -> None:
    chain: list[bytes] = []
    settings = 0
    for kind, body in chunks.split(data, 2):
        if kind == CERTIFICATE:
            chain.append(body)
        elif body:
            settings = body[0]
    purpose = x509.Purpose.CLIENT_AUTH if settings & 1 else x509.Purpose.SERVER_AUTH
    (_bench if settings & 2 else _boot)(tuple(chain), purpose)


def seeds() -> dict[str, bytes]:
    fixture, hierarchy = boot(), bench_chain()

    def script(settings: int, *certificates: bytes) -> bytes:
        return chunks.join([(SETTINGS, bytes((settings,))), *((CERTIFICATE, der) for der in certificates)])

    return {
        "boot-client": script(1, fixture.pki.client.cert_der),
        "boot-server": script(0, fixture.pki.server.cert_der, fixture.pki.ca_der),
        "boot-web": script(0, fixture.pki.web.cert_der),
        "boot-wrong-purpose": script(0, fixture.pki.client.cert_der),
        "boot-ca-as-leaf": script(1, fixture.pki.ca_der),
        "bench-server": script(2, hierarchy.server.der, hierarchy.intermediate.der),
        "bench-client": script(3, hierarchy.client.der, hierarchy.intermediate.der, hierarchy.root.der),
        "bench-missing-intermediate": script(2, hierarchy.server.der),
    }
