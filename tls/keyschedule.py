"""Key derivation: the TLS 1.3 HKDF schedule (RFC 8446 §7.1) and the TLS 1.2 PRF (RFC 5246 §5, RFC 7627).

HMAC goes through the stdlib's `hmac.digest` (one C call per block): the handshake makes a dozen
derivations and this is measurably faster than building HMAC objects.
"""

from __future__ import annotations

import hashlib
import hmac

from tls.codec import u16, vec8


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt, ikm, hash_name)


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.digest(prk, block + info + bytes((counter,)), hash_name)
        output += block
        counter += 1
    return output[:length]


def hkdf_expand_label(hash_name: str, secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    info = u16(length) + vec8(b"tls13 " + label) + vec8(context)
    return hkdf_expand(hash_name, secret, info, length)


def empty_hash(hash_name: str) -> bytes:
    return hashlib.new(hash_name).digest()


class KeySchedule13:
    """Early -> handshake -> master secret for one connection (no PSK: the early secret uses zeros)."""

    def __init__(self, hash_name: str) -> None:
        self.hash_name = hash_name
        self.hash_length = hashlib.new(hash_name).digest_size
        zeros = bytes(self.hash_length)
        self.early_secret = hkdf_extract(hash_name, zeros, zeros)
        self.handshake_secret = b""
        self.master_secret = b""

    def derive_secret(self, secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
        return hkdf_expand_label(self.hash_name, secret, label, transcript_hash, self.hash_length)

    def set_shared_secret(self, shared: bytes) -> None:
        derived = self.derive_secret(self.early_secret, b"derived", empty_hash(self.hash_name))
        self.handshake_secret = hkdf_extract(self.hash_name, derived, shared)
        derived = self.derive_secret(self.handshake_secret, b"derived", empty_hash(self.hash_name))
        self.master_secret = hkdf_extract(self.hash_name, derived, bytes(self.hash_length))

    def handshake_traffic(self, transcript_hash: bytes) -> tuple[bytes, bytes]:
        """(client, server) handshake traffic secrets over ClientHello..ServerHello."""
        return (self.derive_secret(self.handshake_secret, b"c hs traffic", transcript_hash),
                self.derive_secret(self.handshake_secret, b"s hs traffic", transcript_hash))

    def application_traffic(self, transcript_hash: bytes) -> tuple[bytes, bytes]:
        """(client, server) application traffic secrets over ClientHello..server Finished."""
        return (self.derive_secret(self.master_secret, b"c ap traffic", transcript_hash),
                self.derive_secret(self.master_secret, b"s ap traffic", transcript_hash))

    def finished(self, base_key: bytes, transcript_hash: bytes) -> bytes:
        finished_key = hkdf_expand_label(self.hash_name, base_key, b"finished", b"", self.hash_length)
        return hmac.digest(finished_key, transcript_hash, self.hash_name)

    def next_traffic_secret(self, secret: bytes) -> bytes:
        return hkdf_expand_label(self.hash_name, secret, b"traffic upd", b"", self.hash_length)


def traffic_key_iv(hash_name: str, secret: bytes, key_length: int) -> tuple[bytes, bytes]:
    return (hkdf_expand_label(hash_name, secret, b"key", b"", key_length),
            hkdf_expand_label(hash_name, secret, b"iv", b"", 12))


class Transcript:
    """The running handshake hash. Until the suite (and so the hash) is known, messages are kept whole;
    a HelloRetryRequest replaces ClientHello1 with its synthetic message_hash (RFC 8446 §4.4.1)."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._hash: hashlib._Hash | None = None
        self.hash_name = ""

    def add(self, message: bytes | memoryview) -> None:
        if self._hash is None:
            self._pending.append(bytes(message))
        else:
            self._hash.update(message)

    def set_hash(self, hash_name: str) -> None:
        self.hash_name = hash_name
        self._hash = hashlib.new(hash_name)
        for message in self._pending:
            self._hash.update(message)
        self._pending = []

    def restart_after_hrr(self, hash_name: str) -> None:
        """Replace everything so far (ClientHello1) by message_hash; the HRR itself is added next."""
        first = hashlib.new(hash_name)
        if self._hash is not None:
            first = self._hash
        else:
            for message in self._pending:
                first.update(message)
        digest = first.digest()
        self._pending = []
        self.set_hash(hash_name)
        self.add(bytes((254, 0, 0, len(digest))) + digest)

    def digest(self) -> bytes:
        if self._hash is None:
            raise RuntimeError("transcript hash used before the suite was chosen")
        return self._hash.digest()


def prf12(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """TLS 1.2 P_hash (RFC 5246 §5)."""
    full_seed = label + seed
    output = b""
    a = full_seed
    while len(output) < length:
        a = hmac.digest(secret, a, hash_name)
        output += hmac.digest(secret, a + full_seed, hash_name)
    return output[:length]


def extended_master_secret(hash_name: str, premaster: bytes, session_hash: bytes) -> bytes:
    return prf12(hash_name, premaster, b"extended master secret", session_hash, 48)


def key_block12(hash_name: str, master: bytes, client_random: bytes, server_random: bytes, length: int) -> bytes:
    return prf12(hash_name, master, b"key expansion", server_random + client_random, length)


def finished12(hash_name: str, master: bytes, label: bytes, transcript_hash: bytes) -> bytes:
    return prf12(hash_name, master, label, transcript_hash, 12)
