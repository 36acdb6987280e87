"""Our own X.509: strict DER parsing into an immutable model, and RFC 5280 path validation for TLS.

Our strict DER reader (`der`) decodes, following the RFC 5280 schema field by field; pyasn1 remains the
reference it is tested against and decodes the two rare structures whose schemas are large (RSASSA-PSS
parameters, x400Address and ediPartyName names). `cryptography` verifies signatures; every policy
decision is made here. Nothing but `X509Error` escapes: malformed input, untrusted chains and exceeded
work limits all raise it with a failure category.

The names below are this package's interface (`from tls import x509; x509.validate(...)`), and each is imported
from its module the first time it is asked for. Why not at once: importing any module of the package runs this
file first, and the appliance's boot needs only the light ones (the OIDs, the DER writer's helpers, the limits,
`Purpose`, `peek`) to make its certificates; loading the parser, the model, the key decoders and path validation
with them cost the boot about 35 ms under TCG (issue 17: the imports step, medians of 12 interleaved boots), for
a validator that first runs at the first mutual-TLS handshake. No module of the package has an exported name as
its own name (the validator is `validation.validate`), so importing a module never hides a name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tls.x509.errors import X509Error
    from tls.x509.keys import KeyKind, RsaPssPublicKey, load_public_key
    from tls.x509.limits import DEFAULT_LIMITS, ValidationLimits
    from tls.x509.model import Certificate, Name
    from tls.x509.parse import parse_certificate
    from tls.x509.purpose import PeerName, Purpose
    from tls.x509.validation import ValidatedPath, validate

_HOMES = {
    "X509Error": "errors",
    "KeyKind": "keys",
    "RsaPssPublicKey": "keys",
    "load_public_key": "keys",
    "DEFAULT_LIMITS": "limits",
    "ValidationLimits": "limits",
    "Certificate": "model",
    "Name": "model",
    "parse_certificate": "parse",
    "PeerName": "purpose",
    "Purpose": "purpose",
    "ValidatedPath": "validation",
    "validate": "validation",
}
"""Each exported name and the module of this package that defines it."""

__all__ = [
    "DEFAULT_LIMITS",
    "Certificate",
    "KeyKind",
    "Name",
    "PeerName",
    "Purpose",
    "RsaPssPublicKey",
    "ValidatedPath",
    "ValidationLimits",
    "X509Error",
    "load_public_key",
    "parse_certificate",
    "validate",
]


def __getattr__(name: str) -> object:
    """An exported name, imported from its module on first use and then kept here (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
