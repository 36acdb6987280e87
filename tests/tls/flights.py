"""Misbehaving peers built from the codecs: a real flight is cut into records and messages, opened with the
keys the receiving engine's state holds, changed, and protected again. No engine internals are patched, so
what a test sends is exactly what a hostile peer could send."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tls.client import ClientConnection
from tls.client_states import AwaitChangeCipherSpec12, AwaitEncryptedExtensions, Keys13
from tls.constants import ContentType
from tls.handshake_common import keys12
from tls.keyschedule import traffic_key_iv
from tls.messages import frame
from tls.record import Protection13, Record, RecordReader, plaintext_record
from tls.server import ServerConnection
from tls.server_states import AwaitChangeCipherSpec
from tls.suites import SuiteInfo


def split_records(data: bytes) -> list[Record]:
    return list(RecordReader(2**14 + 256).feed(data))


def split_messages(data: bytes) -> list[bytes]:
    messages = []
    while data:
        length = int.from_bytes(data[1:4], "big")
        messages.append(data[: 4 + length])
        data = data[4 + length :]
    return messages


def wire(records: list[Record]) -> bytes:
    return b"".join(r.header + bytes(r.payload) for r in records)


def protection13(secret: bytes, suite: SuiteInfo) -> Protection13:
    key, iv = traffic_key_iv(suite.hash_name, secret, suite.key_length)
    return Protection13(suite, key, iv)


def seal13(messages: list[bytes], secret: bytes, suite: SuiteInfo) -> bytes:
    """Each message in its own record, protected from sequence number 0 on (a fresh key)."""
    writer = protection13(secret, suite)
    return b"".join(writer.encrypt(ContentType.HANDSHAKE, m) for m in messages)


@dataclass
class Flight13:
    """The server's TLS 1.3 flight after its ServerHello (which the client has already processed)."""

    messages: list[bytes]
    keys: Keys13

    def seal(self, messages: list[bytes]) -> bytes:
        return seal13(messages, self.keys.server_hs, self.keys.suite)


def server_flight_13(client: ClientConnection, server: ServerConnection) -> Flight13:
    """Run ClientHello → server, hand the client the ServerHello (and CCS), and return the rest opened."""
    server.receive_data(client.data_to_send())
    return open_server_flight_13(client, server.data_to_send())


def open_server_flight_13(client: ClientConnection, data: bytes) -> Flight13:
    """Hand the client the plaintext part of the server's flight and return the protected rest opened."""
    records = split_records(data)
    client.receive_data(wire([r for r in records if r.content_type != ContentType.APPLICATION_DATA]))
    state = client.state
    assert isinstance(state, AwaitEncryptedExtensions), state
    reader = protection13(state.keys.server_hs, state.keys.suite)
    inner = b"".join(reader.decrypt(r)[1] for r in records if r.content_type == ContentType.APPLICATION_DATA)
    return Flight13(split_messages(inner), state.keys)


def client_flight_13(client: ClientConnection, flight: Flight13) -> list[bytes]:
    """Give the client the server's flight unchanged and return its answer (Certificate.. Finished) opened."""
    client.receive_data(flight.seal(flight.messages))
    reader = protection13(flight.keys.client_hs, flight.keys.suite)
    return split_messages(b"".join(reader.decrypt(r)[1] for r in split_records(client.data_to_send())
                                   if r.content_type == ContentType.APPLICATION_DATA))


def reframe(message: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """The message with its body changed and its length header kept right."""
    body = change(message[4:])
    return message[:1] + len(body).to_bytes(3, "big") + body


def flip_last_byte(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 1])


def tamper_tls12_finished(data: bytes, state: AwaitChangeCipherSpec12 | AwaitChangeCipherSpec,
                          client_random: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """The peer's CCS + Finished flight with the Finished message changed. `state` is the receiving engine's:
    it holds the master secret and the randoms, except a client's own random, which a receiving client's
    caller passes as `client_random` (ignored for a receiving server). The sender's record keys are derived
    from them afresh, so the changed Finished is still properly protected."""
    if isinstance(state, AwaitChangeCipherSpec12):  # the client receives the server's Finished
        suite, master, server_random, server_writes = state.hello.suite, state.master, state.hello.server_random, True
    else:
        suite, master, server_random, server_writes = (state.hello.suite, state.keys.master,
                                                       state.hello.server_random, False)
        client_random = state.hello.client_random
    records = split_records(data)
    out = b""
    for record in records:
        if record.content_type != ContentType.HANDSHAKE:
            out += wire([record])
            continue
        opener = keys12(suite, master, client_random, server_random)[1 if server_writes else 0]
        plain = opener.decrypt(record)
        sealer = keys12(suite, master, client_random, server_random)[1 if server_writes else 0]
        out += sealer.encrypt(ContentType.HANDSHAKE, reframe(bytes(plain), change))
    return out


def without(ext_type: int) -> Callable[[Any], Any]:
    """A hello editor that drops one extension (for `edit_hello`)."""
    return lambda hello: replace(hello, extensions=tuple(e for e in hello.extensions if e[0] != ext_type))


def edit_hello(data: bytes, parse: Callable[[memoryview], Any], serialize: Callable[[Any], bytes],
               change: Callable[[Any], Any]) -> bytes:
    """The plaintext flight with its first message (a ClientHello or ServerHello) parsed, changed and
    serialized again; the rest of the flight is kept as it was."""
    records = split_records(data)
    messages = split_messages(bytes(records[0].payload))
    first = messages[0]
    body = serialize(change(parse(memoryview(first)[4:])))
    edited = frame(first[0], body) + b"".join(messages[1:])
    return plaintext_record(ContentType.HANDSHAKE, edited, version=records[0].version) + wire(records[1:])
