"""Bitcoin encodings the vault needs: WIF, P2PKH (base58check), P2WPKH (bech32, BIP-173) and the
signed-message digest (BIP-137). Paired encode/decode; decoders raise `BitcoinFormatError`.

Why here and not a library: these are a few dozen lines of well-specified encoding, and the runtime
dependency set is deliberately tiny (DESIGN.md rule 7). A test checks them against an independent
implementation written in the test itself.
"""

from __future__ import annotations

import hashlib

from appliance.ripemd160 import ripemd160

MAINNET_WIF_PREFIX = 0x80
MAINNET_P2PKH_PREFIX = 0x00
MAINNET_HRP = "bc"
MESSAGE_MAGIC = b"\x18Bitcoin Signed Message:\n"
BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
MAX_BASE58_INPUT = 128  # characters: a WIF is 51-52, an address at most 35


class BitcoinFormatError(ValueError):
    """A WIF or address that does not decode (bad alphabet, length, checksum or prefix)."""


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash160(data: bytes) -> bytes:
    return ripemd160(hashlib.sha256(data).digest())


def base58check_encode(payload: bytes) -> str:
    data = payload + sha256d(payload)[:4]
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, digit = divmod(number, 58)
        out.append(BASE58_ALPHABET[digit])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(out))


def base58check_decode(text: str) -> bytes:
    if not text or len(text) > MAX_BASE58_INPUT:
        raise BitcoinFormatError("base58 string empty or too long")
    number = 0
    for char in text:
        index = BASE58_ALPHABET.find(char)
        if index < 0:
            raise BitcoinFormatError("character outside the base58 alphabet")
        number = number * 58 + index
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    data = b"\x00" * zeros + body
    if len(data) < 5:
        raise BitcoinFormatError("base58check payload too short")
    payload, checksum = data[:-4], data[-4:]
    if sha256d(payload)[:4] != checksum:
        raise BitcoinFormatError("base58check checksum mismatch")
    return payload


def wif_encode(secret: bytes) -> str:
    """Compressed-key WIF (the key's public point is always used compressed here)."""
    if len(secret) != 32:
        raise BitcoinFormatError("a private key is 32 bytes")
    return base58check_encode(bytes([MAINNET_WIF_PREFIX]) + secret + b"\x01")


def wif_decode(wif: str) -> bytes:
    payload = base58check_decode(wif.strip())
    if payload[0] != MAINNET_WIF_PREFIX:
        raise BitcoinFormatError("not a mainnet WIF")
    if len(payload) == 34 and payload[33] == 1:
        return payload[1:33]
    if len(payload) == 33:
        raise BitcoinFormatError("uncompressed-key WIF: the vault uses compressed keys only")
    raise BitcoinFormatError("WIF has the wrong length")


def p2pkh_address(compressed_pubkey: bytes) -> str:
    return base58check_encode(bytes([MAINNET_P2PKH_PREFIX]) + hash160(compressed_pubkey))


def _bech32_polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _to_5bit(data: bytes) -> list[int]:
    acc = bits = 0
    out = []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def p2wpkh_address(compressed_pubkey: bytes, hrp: str = MAINNET_HRP) -> str:
    """Segwit v0 key-hash address (bech32, not bech32m: witness version 0)."""
    data = [0, *_to_5bit(hash160(compressed_pubkey))]
    polymod = _bech32_polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data + checksum)


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def message_digest(message: bytes) -> bytes:
    """The digest Bitcoin Core's signmessage/verifymessage sign: sha256d(magic || varint(len) || message)."""
    return sha256d(MESSAGE_MAGIC + _varint(len(message)) + message)


# BIP-137 header byte bases (recovery id 0..3 is added).
HEADER_P2PKH_COMPRESSED = 31
HEADER_P2WPKH = 39
