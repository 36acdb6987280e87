"""Our engine (`tls.server` / `tls.client`) configured for the appliance's endpoints.

The engine validates the peer's chain itself (through `tls.x509`) as part of the handshake; the vault
validates it again before releasing the secret, so neither check alone opens it.

Imported directly, not by name: a change to `tls.config` fails mypy here, not when the VM boots. Both engines
are imported on first use, not at boot: nothing before the first TLS connection needs them, and under TCG
each is a tenth of a second of the boot (issue 17). The server engine's first connection comes after the
RSA leaves exist (it waits for them), so its import is paid once, then; the client engine's belongs to the
connect-back and reverse roles only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.tls_channel import TlsEngine
from appliance.pki import Identity
from appliance.sources import Sources
from tls.limits import DEFAULT_LIMITS
from tls.limits import Limits as TlsLimits

if TYPE_CHECKING:
    from tls.config import Credential


class OursFactory:
    name = "ours"

    def __init__(self, anchor_der: bytes, sources: Sources, limits: TlsLimits = DEFAULT_LIMITS) -> None:
        """`anchor_der`: the boot CA's certificate, the only anchor for peers' chains (all this needs of the
        PKI); `sources`: the root's wall clock and randomness, which the engine takes in its config; `limits`:
        the TLS part of the appliance's limits tree."""
        self._anchor_der = anchor_der
        self._sources = sources
        self._limits = limits
        self._credentials: dict[tuple[bytes, ...], tuple[Credential, ...]] = {}

    def server(self, identity: Identity, *, require_client_cert: bool) -> TlsEngine:
        from tls.config import ClientAuth, ClientAuthMode, ServerConfig  # noqa: PLC0415 - see the module docstring
        from tls.server import ServerConnection  # noqa: PLC0415

        client_auth = (
            ClientAuth(mode=ClientAuthMode.REQUIRED, anchors=(self._anchor_der,)) if require_client_cert else None
        )
        config = ServerConfig(
            chain=(identity.cert_der,),
            key=identity.key,
            random=self._sources.random,
            time=self._sources.now,
            client_auth=client_auth,
            limits=self._limits,
            more_credentials=self._alternates(identity),
        )
        return ServerConnection(config)

    def _alternates(self, identity: Identity) -> tuple[Credential, ...]:
        """The role's other certificates (its RSA leaf), parsed once per identity rather than per
        connection: the engine picks among them per ClientHello, the identity's own first (ECDSA). Keyed by
        every certificate of the identity: the same ECDSA leaf later gains its RSA alternate."""
        certificates = (identity.cert_der, *(alternate.cert_der for alternate in identity.alternates))
        cached = self._credentials.get(certificates)
        if cached is None:
            from tls.config import Credential  # noqa: PLC0415 - see the module docstring

            cached = tuple(Credential.of((alternate.cert_der,), alternate.key) for alternate in identity.alternates)
            self._credentials[certificates] = cached
        return cached

    def client(self, identity: Identity) -> TlsEngine:
        from tls.client import ClientConnection  # noqa: PLC0415 - not needed before the first connect-back
        from tls.config import ClientConfig  # noqa: PLC0415

        config = ClientConfig(
            random=self._sources.random,
            time=self._sources.now,
            anchors=(self._anchor_der,),
            server_name=None,
            chain=(identity.cert_der,),
            key=identity.key,
            limits=self._limits,
        )
        return ClientConnection(config)
