"""Our own X.509: strict DER parsing into an immutable model, and RFC 5280 path validation for TLS.

Our strict DER reader (`der`) decodes, following the RFC 5280 schema field by field; pyasn1 remains the
reference it is tested against and decodes the two rare structures whose schemas are large (RSASSA-PSS
parameters, x400Address and ediPartyName names). `cryptography` verifies signatures; every policy
decision is made here. Nothing but `X509Error` escapes: malformed input, untrusted chains and exceeded
work limits all raise it with a failure category.
"""

from tls.x509.errors import X509Error
from tls.x509.keys import KeyKind, RsaPssPublicKey, load_public_key
from tls.x509.limits import DEFAULT_LIMITS, ValidationLimits
from tls.x509.model import Certificate, Name
from tls.x509.parse import parse_certificate
from tls.x509.purpose import PeerName, Purpose
from tls.x509.validate import ValidatedPath, validate

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
