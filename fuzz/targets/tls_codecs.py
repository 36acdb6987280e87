"""Every handshake message codec (tls/messages.py) and extension body codec (tls/extensions.py): the first
byte picks the codec, the rest is the body.

What must hold: only ProtocolError escapes a parser; where a serializer exists, parsing is a fixed point of
serialize-then-parse (parse(serialize(parse(b))) == parse(b)) and serializing is idempotent, so whatever the
parser accepts, the engine can write back the same message; where the codec is canonical (the extension bodies
we write), serialize(parse(b)) == b.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fuzz.errors import require
from tls import extensions as ext
from tls import messages as msg
from tls.codec import Reader
from tls.constants import ExtensionType, NamedGroup
from tls.errors import ProtocolError

Codec = tuple[str, Callable[[bytes], Any], Callable[[Any], bytes] | None, bool]
"""(name, parse, serialize or None, canonical: serialize(parse(b)) == b)."""


def _extension_block(body: bytes) -> ext.Extensions:
    reader = Reader(body, "extensions")
    found = ext.parse_extensions(reader, "fuzz")
    reader.end()
    return found


CODECS: tuple[Codec, ...] = (
    ("client-hello", msg.parse_client_hello, msg.serialize_client_hello, False),
    ("server-hello", msg.parse_server_hello, msg.serialize_server_hello, False),
    ("encrypted-extensions", msg.parse_encrypted_extensions, msg.serialize_encrypted_extensions, True),
    ("certificate13", lambda b: msg.parse_certificate13(b, 12), msg.serialize_certificate13, True),
    ("certificate12", lambda b: msg.parse_certificate12(b, 12), msg.serialize_certificate12, True),
    ("certificate-request13", msg.parse_certificate_request13, msg.serialize_certificate_request13, True),
    ("certificate-request12", msg.parse_certificate_request12, msg.serialize_certificate_request12, True),
    ("certificate-verify", msg.parse_certificate_verify, msg.serialize_certificate_verify, True),
    ("finished", lambda b: msg.parse_finished(b, 32), msg.serialize_finished, True),
    ("key-update", msg.parse_key_update, msg.serialize_key_update, True),
    ("new-session-ticket", msg.parse_new_session_ticket, msg.serialize_new_session_ticket, True),
    ("server-key-exchange", msg.parse_server_key_exchange, msg.serialize_server_key_exchange, True),
    ("client-key-exchange", msg.parse_client_key_exchange, msg.serialize_client_key_exchange, True),
    ("server-hello-done", lambda b: msg.parse_empty(b, "ServerHelloDone"), None, False),
    ("extension-block", _extension_block, ext.serialize_extensions, True),
    ("u16-list", lambda b: ext.parse_u16_list16(b, "supported_groups"), ext.serialize_u16_list16, True),
    ("client-versions", ext.parse_client_versions, ext.serialize_client_versions, True),
    ("selected-version", ext.parse_selected_version, lambda v: v.to_bytes(2, "big"), True),
    ("client-shares", ext.parse_client_shares, ext.serialize_client_shares, True),
    ("server-share", ext.parse_server_share, lambda share: ext.serialize_server_share(*share), True),
    ("hrr-group", ext.parse_hrr_group, lambda group: group.to_bytes(2, "big"), True),
    ("server-name", ext.parse_server_name, None, False),
    ("renegotiation-info", ext.parse_renegotiation_info, lambda value: len(value).to_bytes(1, "big") + value, True),
    ("point-formats", ext.parse_point_formats, lambda value: len(value).to_bytes(1, "big") + value, True),
    ("cookie", ext.parse_cookie, lambda value: len(value).to_bytes(2, "big") + value, True),
)


def fuzz_one(data: bytes) -> None:
    if not data:
        return
    _, parse, serialize, canonical = CODECS[data[0] % len(CODECS)]
    body = data[1:]
    try:
        parsed = parse(body)
    except ProtocolError:
        return
    if parse is ext.parse_server_name and parsed is not None:
        require(ext.parse_server_name(ext.serialize_server_name(parsed)) == parsed, "server_name round trip")
    if serialize is None:
        return
    written = serialize(parsed)
    require(parse(written) == parsed, "parse(serialize(parse(b))) != parse(b)")
    require(serialize(parse(written)) == written, "serialize is not idempotent")
    if canonical:
        require(written == body, "serialize(parse(b)) != b for a canonical codec")


def seeds() -> dict[str, bytes]:
    """One valid body per codec, written by the codecs themselves."""
    extensions: ext.Extensions = (
        (ExtensionType.SUPPORTED_GROUPS, ext.serialize_u16_list16([NamedGroup.X25519])),
        (ExtensionType.SERVER_NAME, ext.serialize_server_name("pinata.local")),
    )
    hello = msg.ClientHello(0x0303, bytes(32), bytes(32), (0x1301, 0xC02B), b"\x00", extensions)
    bodies = [
        msg.serialize_client_hello(hello),
        msg.serialize_server_hello(msg.ServerHello(0x0303, bytes(32), b"", 0x1301, 0, extensions[:1])),
        msg.serialize_encrypted_extensions(msg.EncryptedExtensions(extensions)),
        msg.serialize_certificate13(msg.Certificate13(b"", ((b"\x30\x00", ()),))),
        msg.serialize_certificate12(msg.Certificate12((b"\x30\x00", b"\x30\x03\x02\x01\x01"))),
        msg.serialize_certificate_request13(msg.CertificateRequest13(b"", extensions[:1])),
        msg.serialize_certificate_request12(msg.CertificateRequest12(b"\x40", (0x0403,), b"")),
        msg.serialize_certificate_verify(msg.CertificateVerify(0x0807, bytes(64))),
        msg.serialize_finished(msg.Finished(bytes(32))),
        msg.serialize_key_update(msg.KeyUpdate(True)),
        msg.serialize_new_session_ticket(msg.NewSessionTicket(60, 1, b"n", b"ticket", ())),
        msg.serialize_server_key_exchange(msg.ServerKeyExchange(NamedGroup.X25519, bytes(32), 0x0403, bytes(70))),
        msg.serialize_client_key_exchange(msg.ClientKeyExchange(bytes(32))),
        b"",
        ext.serialize_extensions(extensions),
        ext.serialize_u16_list16([NamedGroup.X25519, NamedGroup.SECP256R1]),
        ext.serialize_client_versions([0x0304, 0x0303]),
        (0x0304).to_bytes(2, "big"),
        ext.serialize_client_shares([(NamedGroup.X25519, bytes(32))]),
        ext.serialize_server_share(NamedGroup.X25519, bytes(32)),
        NamedGroup.SECP256R1.to_bytes(2, "big"),
        ext.serialize_server_name("pinata.local"),
        b"\x00",
        b"\x01\x00",
        b"\x00\x04abcd",
    ]
    return {f"{index:02d}-{codec[0]}": bytes((index,)) + body
            for index, (codec, body) in enumerate(zip(CODECS, bodies, strict=True))}
