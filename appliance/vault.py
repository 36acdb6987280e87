"""The wallet vault: the only holder of the secret, with exactly three ways out (DESIGN.md rule 5).

1. the addresses (P2WPKH bech32, P2PKH),
2. a proof of possession: a BIP-137 signed message over a text that includes the caller's challenge,
3. the WIF itself, returned by `release` only after the peer chain it is given validates against the
   boot CA. `release` runs the validator itself rather than trusting a flag set by a TLS engine, so a bug
   in an engine's bookkeeping cannot open the vault.

The web pages need only the first two: they get a `Prover` (`Vault.prover()`), an object whose class has
no `release` at all, so neither mypy nor a slip at runtime lets a page hand out the key. Only the endpoints
that authenticate peers hold the `Vault` itself (DESIGN.md rule 5).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

from appliance import bitcoin
from appliance.validation import Validator
from appliance.wallet_key import WalletKey
from tls.x509 import Purpose

PROOF_TITLE = "Pinata proof of possession"


@dataclass(frozen=True)
class Proof:
    """A BIP-137 proof of possession as /proof serves it: the signed message (both addresses, the time and the
    caller's challenge) and one signature per address type, since the tools that verify one do not verify the
    other."""

    message: str
    address_p2pkh: str
    address_p2wpkh: str
    signature_p2pkh: str  # base64, BIP-137 header 31-34 (compressed P2PKH): Bitcoin Core's verifymessage
    signature_p2wpkh: str  # base64, BIP-137 header 39-42 (P2WPKH): Electrum and BIP-137 tools


class Vault:
    __slots__ = ("_key", "_validator", "address_p2pkh", "address_p2wpkh")

    def __init__(self, secret: bytes, validator: Validator) -> None:
        self._key = WalletKey(secret)  # (refuses, as a ValueError, 32 bytes that are not a key, or not 32)
        self._validator = validator
        self.address_p2pkh = bitcoin.p2pkh_address(self._key.public)
        self.address_p2wpkh = bitcoin.p2wpkh_address(self._key.public)

    def __repr__(self) -> str:
        return f"Vault({self.address_p2wpkh})"

    def proof(self, challenge: str, now: datetime.datetime) -> Proof:
        message = (
            f"{PROOF_TITLE}\naddress: {self.address_p2wpkh}\naddress-legacy: {self.address_p2pkh}\n"
            f"time: {now.strftime('%Y-%m-%dT%H:%M:%SZ')}\nchallenge: {challenge}"
        )
        digest = bitcoin.message_digest(message.encode("utf-8"))
        compact, recovery_id = self._key.sign_recoverable(digest)  # raises rather than sign wrongly
        return Proof(
            message=message,
            address_p2pkh=self.address_p2pkh,
            address_p2wpkh=self.address_p2wpkh,
            signature_p2pkh=_b64(bytes([bitcoin.HEADER_P2PKH_COMPRESSED + recovery_id]) + compact),
            signature_p2wpkh=_b64(bytes([bitcoin.HEADER_P2WPKH + recovery_id]) + compact),
        )

    def prover(self) -> Prover:
        """The web pages' view: addresses and proofs, no release."""
        return Prover(self)

    def release(self, peer_chain: Sequence[bytes], purpose: Purpose, now: datetime.datetime) -> bytes:
        """The WIF, for a peer whose chain validates against the boot CA; raises PeerRejectedError otherwise."""
        self._validator(peer_chain, purpose, now)
        return bitcoin.wif_encode(self._key.secret()).encode("ascii")


@final
class Prover:
    """The wallet as the web pages may use it: its addresses and a proof of possession, nothing else.

    Why a separate class rather than the Vault typed as a narrower Protocol: a Protocol narrows only what
    mypy lets a caller write, while this object has no `release` to call. It reaches the key only through
    the vault's own `proof`, so the key stays reachable from the vault alone."""

    __slots__ = ("_vault",)

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    @property
    def address_p2pkh(self) -> str:
        return self._vault.address_p2pkh

    @property
    def address_p2wpkh(self) -> str:
        return self._vault.address_p2wpkh

    def __repr__(self) -> str:
        return f"Prover({self.address_p2wpkh})"

    def proof(self, challenge: str, now: datetime.datetime) -> Proof:
        return self._vault.proof(challenge, now)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
