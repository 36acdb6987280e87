"""Seeds for the engine targets: a real conversation with one of our own engines as the peer, written down as
the scripted peer's chunks (fuzz/tls_peer.py).

Each record the real peer sends is opened with the keys the target engine reads with at that moment, cut into
messages and played to the target engine at once, each in a record of its own. The script records them as
chunks, except that the peer's Finished and CertificateVerify are written as FINISHED and SIGNED, which the
scripted peer recomputes at replay. Why: signatures differ from run to run (OpenSSL draws ECDSA nonces), and
with them the transcript; a recomputed message fits the transcript of the replay, a recorded one would not.
(While recording, the real peer's own messages are played, so that the real peer and the engine agree.)
"""

from __future__ import annotations

from collections.abc import Callable

from fuzz.tls_keys import Protection, peer_protection
from fuzz.tls_peer import ALERT, APPLICATION_DATA, CCS, FINISHED, HANDSHAKE, SIGNED, ScriptedPeer
from tls.client import ClientConnection
from tls.constants import ContentType, HandshakeType
from tls.record import Protection12, Protection13, Record, RecordReader
from tls.server import ServerConnection

Chunk = tuple[int, bytes]
COMPUTED: dict[int, int] = {HandshakeType.FINISHED: FINISHED, HandshakeType.CERTIFICATE_VERIFY: SIGNED}
"""The peer's messages written as chunks that the scripted peer recomputes at replay."""
RealPeer = ServerConnection | ClientConnection


def _messages(data: bytes) -> list[bytes]:
    messages = []
    while len(data) >= 4:
        end = 4 + int.from_bytes(data[1:4], "big")
        messages.append(data[:end])
        data = data[end:]
    return messages


class Recorder:
    def __init__(self, scripted: ScriptedPeer, peer: RealPeer) -> None:
        self.scripted = scripted
        self.peer = peer
        self.script: list[Chunk] = []
        self._opener: Protection | None = None
        self._opener_for: object = None
        self._pending = scripted.initial

    def play(self, chunk: Chunk, played: Chunk | None = None) -> None:
        """Write `chunk` into the script and play it (or `played`, the real message it stands for)."""
        self.script.append(chunk)
        self._pending += self.scripted.deliver(*(played or chunk))

    def run(self, rounds: int = 32) -> None:
        """Shuttle until both are quiet."""
        reader = RecordReader(2**14 + 2048)
        for _ in range(rounds):
            if self._pending:
                self.peer.receive_data(self._pending)
                self._pending = b""
            wire = self.peer.data_to_send()
            if not wire:
                return
            for record in reader.feed(wire):
                for chunk, played in self._chunks(record):
                    self.play(chunk, played)

    def after(self, action: Callable[[RealPeer], None]) -> None:
        """Let the real peer do something (send data, update keys, close), then shuttle."""
        action(self.peer)
        self.run()

    def _chunks(self, record: Record) -> list[tuple[Chunk, Chunk | None]]:
        """(chunk for the script, the chunk to play instead of it while recording, or None)."""
        if record.content_type == ContentType.CHANGE_CIPHER_SPEC:
            return [((CCS, bytes(record.payload)), None)]
        content_type, content = self._open(record)
        if content_type == ContentType.ALERT:
            return [((ALERT, content), None)]
        if content_type == ContentType.APPLICATION_DATA:
            return [((APPLICATION_DATA, content), None)]
        chunks: list[tuple[Chunk, Chunk | None]] = []
        for message in _messages(content):
            computed = COMPUTED.get(message[0])
            if computed is None:
                chunks.append(((HANDSHAKE, message), None))
            else:
                chunks.append(((computed, b""), (HANDSHAKE, message)))
        return chunks

    def _open(self, record: Record) -> tuple[int, bytes]:
        engine = self.scripted.engine
        if engine._read is not self._opener_for:
            self._opener_for = engine._read
            self._opener = peer_protection(engine)
        opener = self._opener
        if isinstance(opener, Protection13) and record.content_type == ContentType.APPLICATION_DATA:
            return opener.decrypt(record)
        if isinstance(opener, Protection12):
            return record.content_type, opener.decrypt(record)
        return record.content_type, bytes(record.payload)
