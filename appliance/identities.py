"""The boot PKI as the endpoints see it while the server roles' RSA leaves are still being made.

Why a module of its own: the endpoints need to wait for the final identities, and nothing else of the
machinery that makes them (appliance.alternates, which holds the CA key until it has signed them). This is
all of it they import.
"""

from __future__ import annotations

import asyncio

from appliance.pki import IssuedPKI


class ServerIdentities:
    """`current` at once (the ECDSA leaves and the CA certificate); `settled()` once the server roles have
    their RSA leaves too, or once it is known they never will (`give_up`)."""

    def __init__(self, pki: IssuedPKI, *, settled: bool) -> None:
        self._pki = pki
        self._settled = asyncio.Event()
        if settled:
            self._settled.set()

    @property
    def current(self) -> IssuedPKI:
        return self._pki

    @property
    def is_settled(self) -> bool:
        return self._settled.is_set()

    def settle(self, pki: IssuedPKI) -> None:
        """The final identities; once only (a second settling would change certificates under waiters)."""
        if self._settled.is_set():
            raise RuntimeError("the server identities are settled already")
        self._pki = pki
        self._settled.set()

    def give_up(self) -> None:
        """No RSA leaves will come: the current identities are final (nothing happens if they already are)."""
        if not self._settled.is_set():
            self.settle(self._pki)

    async def settled(self) -> IssuedPKI:
        """The final identities, once they exist; the caller bounds the wait."""
        await self._settled.wait()
        return self._pki
