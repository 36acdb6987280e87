"""Our engine (`tls.server` / `tls.client`) configured for the appliance's endpoints.

The engine validates the peer's chain itself (through `tls.x509`) as part of the handshake; the vault
validates it again before releasing the secret, so neither check alone opens it.
"""

from __future__ import annotations

import datetime
import importlib
import os

from adapters.tls_channel import TlsEngine
from appliance.pki import BootPKI, Identity


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class EngineUnavailableError(RuntimeError):
    """Our engine is not (yet) importable in this tree; the caller says so and exits."""


class OursFactory:
    name = "ours"

    def __init__(self, pki: BootPKI) -> None:
        try:
            self._config = importlib.import_module("tls.config")
            self._server = importlib.import_module("tls.server")
            self._client = importlib.import_module("tls.client")
        except ImportError as exc:
            raise EngineUnavailableError(f"our TLS engine is not available: {exc}; use --tls stdlib") from exc
        self._pki = pki

    def server(self, identity: Identity, *, require_client_cert: bool) -> TlsEngine:
        cfg = self._config
        client_auth = (
            cfg.ClientAuth(mode=cfg.ClientAuthMode.REQUIRED, anchors=(self._pki.ca_der,))
            if require_client_cert
            else None
        )
        config = cfg.ServerConfig(
            chain=(identity.cert_der,), key=identity.key, random=os.urandom, time=_now, client_auth=client_auth
        )
        engine: TlsEngine = self._server.ServerConnection(config)
        return engine

    def client(self, identity: Identity) -> TlsEngine:
        cfg = self._config
        config = cfg.ClientConfig(
            random=os.urandom,
            time=_now,
            anchors=(self._pki.ca_der,),
            server_name=None,
            chain=(identity.cert_der,),
            key=identity.key,
        )
        engine: TlsEngine = self._client.ClientConnection(config)
        return engine
