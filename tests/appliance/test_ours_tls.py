"""Our engine's factory: a server config is made once per identity and role, and a change of either makes a
new one (what the engine precomputes from a config or credential must never serve the wrong certificate)."""

from __future__ import annotations

import datetime
import functools
import os
from dataclasses import replace

from appliance import pki
from appliance.ours_tls import OursFactory
from appliance.sources import Sources
from tls.config import ClientAuthMode, ServerConfig
from tls.server import ServerConnection


@functools.cache
def _boot() -> pki.BootPKI:
    return pki.generate(datetime.datetime.now(datetime.UTC), os.urandom)


def _factory() -> OursFactory:
    return OursFactory(_boot().ca_der, Sources(wall=lambda: 0.0, monotonic=lambda: 0.0, random=os.urandom))


def _config(factory: OursFactory, identity: pki.Identity, *, require_client_cert: bool) -> ServerConfig:
    engine = factory.server(identity, require_client_cert=require_client_cert)
    assert isinstance(engine, ServerConnection)
    return engine._config


def test_one_config_per_identity_and_role() -> None:
    factory, server = _factory(), _boot().server
    mutual = _config(factory, server, require_client_cert=True)
    assert _config(factory, server, require_client_cert=True) is mutual
    assert mutual.client_auth is not None
    assert mutual.client_auth.mode is ClientAuthMode.REQUIRED
    assert mutual.client_auth.anchors == (_boot().ca_der,)
    plain = _config(factory, server, require_client_cert=False)
    assert plain is not mutual
    assert plain.client_auth is None
    assert plain.chain == mutual.chain == (server.cert_der,)


def test_another_identity_or_a_new_alternate_gets_its_own_config() -> None:
    factory, boot = _factory(), _boot()
    assert boot.web.alternates
    without = replace(boot.web, alternates=())
    first = _config(factory, without, require_client_cert=False)
    assert first.more_credentials == ()
    later = _config(factory, boot.web, require_client_cert=False)  # the same leaf, now with its RSA alternate
    assert [c.chain for c in later.more_credentials] == [(a.cert_der,) for a in boot.web.alternates]
    other = _config(factory, boot.server, require_client_cert=False)
    assert other.chain == (boot.server.cert_der,) != later.chain
