"""The one way we hand bytes to pyasn1: DER walker first, schema decode, then re-encode to prove the
encoding was canonical (no explicitly encoded DEFAULT, no trailing bytes).

Only rare structures come here, whose schemas are large and which real certificates seldom or never carry:
RSASSA-PSS parameters (tls.x509.pss) and the x400Address and ediPartyName forms of a GeneralName
(tls.x509.general_names). Everything on the common path is read by our own DER reader (tls.x509.der).
pyasn1 is imported on the first such structure, not at boot: its codecs and the RFC 5280 schema were a third
of a second of the boot under TCG (issue 17), for structures real certificates almost never carry."""

from __future__ import annotations

from typing import Any

from tls.x509.der import check_der
from tls.x509.errors import decode_error


def decode_strict(value: bytes, spec: Any, what: str) -> Any:
    """DER-check, schema-decode and re-encode `value`; refuse anything not canonical for `spec`."""
    from pyasn1.codec.der import decoder as der_decoder  # noqa: PLC0415 - first use, not boot (see above)
    from pyasn1.codec.der import encoder as der_encoder  # noqa: PLC0415
    from pyasn1.error import PyAsn1Error  # noqa: PLC0415

    # Errors pyasn1 may raise on hostile input besides its own; anything else would be a bug to fix.
    pyasn1_errors = (PyAsn1Error, ValueError, TypeError, IndexError, KeyError, OverflowError, UnicodeError)
    check_der(value)
    try:
        decoded, rest = der_decoder.decode(value, asn1Spec=spec)
        canonical = der_encoder.encode(decoded)
    except pyasn1_errors as exc:
        raise decode_error(f"{what} malformed") from exc
    if rest:
        raise decode_error(f"trailing bytes after {what}")
    if canonical != value:
        raise decode_error(f"{what} is not in canonical DER")
    return decoded
