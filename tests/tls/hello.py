"""Hand-made ClientHellos for refusal tests: a valid TLS 1.3 (and 1.2-capable) hello, with knobs."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tls.constants import ExtensionType as E
from tls.constants import NamedGroup
from tls.extensions import Extensions, serialize_client_shares, serialize_client_versions, serialize_u16_list16
from tls.messages import ClientHello, frame, serialize_client_hello
from tls.record import plaintext_record
from tls.signatures import HANDSHAKE_SCHEMES_12
from tls.suites import DEFAULT_SUITES_12, DEFAULT_SUITES_13


def x25519_public() -> bytes:
    return x25519.X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def default_extensions(versions: tuple[int, ...] = (0x0304, 0x0303)) -> list[tuple[int, bytes]]:
    extensions: list[tuple[int, bytes]] = [
        (E.SUPPORTED_GROUPS, serialize_u16_list16([NamedGroup.X25519, NamedGroup.SECP256R1])),
        (E.SIGNATURE_ALGORITHMS, serialize_u16_list16(HANDSHAKE_SCHEMES_12)),
        (E.EXTENDED_MASTER_SECRET, b""),
        (E.RENEGOTIATION_INFO, b"\x00"),
        (E.EC_POINT_FORMATS, b"\x01\x00"),
    ]
    if versions:
        extensions.append((E.SUPPORTED_VERSIONS, serialize_client_versions(versions)))
    if 0x0304 in versions:
        extensions.append((E.KEY_SHARE, serialize_client_shares([(NamedGroup.X25519, x25519_public())])))
    return extensions


def client_hello(*, legacy_version: int = 0x0303, suites: tuple[int, ...] = DEFAULT_SUITES_13 + DEFAULT_SUITES_12,
                 compression: bytes = b"\x00", extensions: Extensions | list[tuple[int, bytes]] | None = None,
                 versions: tuple[int, ...] = (0x0304, 0x0303), drop: tuple[int, ...] = (),
                 add: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    """A whole ClientHello record."""
    exts = list(extensions) if extensions is not None else default_extensions(versions)
    exts = [e for e in exts if e[0] not in drop] + list(add)
    ch = ClientHello(legacy_version, b"\x11" * 32, b"\x22" * 32, suites, compression, tuple(exts))
    return plaintext_record(22, frame(1, serialize_client_hello(ch)), version=0x0301)
