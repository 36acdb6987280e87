"""The one way we hand bytes to pyasn1: DER walker first, schema decode, then re-encode to prove the
encoding was canonical (no explicitly encoded DEFAULT, no trailing bytes).

Only rare structures come here, whose schemas are large and which real certificates seldom or never carry:
RSASSA-PSS parameters (tls.x509.pss) and the x400Address and ediPartyName forms of a GeneralName
(tls.x509.general_names). Everything on the common path is read by our own DER reader (tls.x509.der)."""

from __future__ import annotations

from typing import Any, Final

from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error

from tls.x509.der import check_der
from tls.x509.errors import decode_error

# Errors pyasn1 may raise on hostile input besides its own; anything else would be a bug to fix.
PYASN1_ERRORS: Final = (PyAsn1Error, ValueError, TypeError, IndexError, KeyError, OverflowError, UnicodeError)


def decode_strict(value: bytes, spec: Any, what: str) -> Any:
    """DER-check, schema-decode and re-encode `value`; refuse anything not canonical for `spec`."""
    check_der(value)
    try:
        decoded, rest = der_decoder.decode(value, asn1Spec=spec)
        canonical = der_encoder.encode(decoded)
    except PYASN1_ERRORS as exc:
        raise decode_error(f"{what} malformed") from exc
    if rest:
        raise decode_error(f"trailing bytes after {what}")
    if canonical != value:
        raise decode_error(f"{what} is not in canonical DER")
    return decoded
