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
    from tls.config import Credential, ServerConfig


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
        self._server_configs: dict[tuple[tuple[bytes, ...], bool], ServerConfig] = {}

    def server(self, identity: Identity, *, require_client_cert: bool) -> TlsEngine:
        from tls.server import ServerConnection  # noqa: PLC0415 - see the module docstring

        return ServerConnection(self._server_config(identity, require_client_cert))

    def _server_config(self, identity: Identity, require_client_cert: bool) -> ServerConfig:
        """One config per identity (all its certificates, as `_alternates` keys them) and role, made on its
        first connection and shared by the rest: everything in it is fixed by the factory and the identity,
        and what the engine works out from a config or credential once (the primary credential, its scheme
        lists, its Certificate message) then lasts instead of being redone for every connection."""
        certificates = _certificates(identity)
        cached = self._server_configs.get((certificates, require_client_cert))
        if cached is None:
            from tls.config import ClientAuth, ClientAuthMode, ServerConfig  # noqa: PLC0415 - see the module docstring

            client_auth = (
                ClientAuth(mode=ClientAuthMode.REQUIRED, anchors=(self._anchor_der,)) if require_client_cert else None
            )
            cached = ServerConfig(
                chain=(identity.cert_der,),
                key=identity.key,
                random=self._sources.random,
                time=self._sources.now,
                client_auth=client_auth,
                limits=self._limits,
                more_credentials=self._alternates(identity, certificates),
            )
            self._server_configs[(certificates, require_client_cert)] = cached
        return cached

    def _alternates(self, identity: Identity, certificates: tuple[bytes, ...]) -> tuple[Credential, ...]:
        """The role's other certificates (its RSA leaf), parsed once per identity (both roles' configs share
        them): the engine picks among them per ClientHello, the identity's own first (ECDSA). Keyed by
        `certificates`, every certificate of the identity: the same ECDSA leaf later gains its RSA alternate."""
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


def _certificates(identity: Identity) -> tuple[bytes, ...]:
    """Every certificate of an identity, its own first: what the factory's caches are keyed by."""
    return (identity.cert_der, *(alternate.cert_der for alternate in identity.alternates))
