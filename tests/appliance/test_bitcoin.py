from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import bitcoin
from appliance.ripemd160 import ripemd160, ripemd160_pure

G_COMPRESSED = bytes.fromhex("0279BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798")
KEY_ONE = (1).to_bytes(32, "big")


def test_ripemd160_known_vectors() -> None:
    # From the RIPEMD-160 reference page.
    assert ripemd160_pure(b"").hex() == "9c1185a5c5e9fc54612808977ee8f548b2258d31"
    assert ripemd160_pure(b"abc").hex() == "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
    assert ripemd160_pure(b"a" * 1_000).hex() == hashlib.new("ripemd160", b"a" * 1000).hexdigest()


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_ripemd160_pure_matches_openssl(data: bytes) -> None:
    assert ripemd160_pure(data) == hashlib.new("ripemd160", data).digest() == ripemd160(data)


def test_addresses_of_the_generator_point() -> None:
    # BIP-173's example is the P2WPKH address of G (the public key of private key 1).
    assert bitcoin.p2wpkh_address(G_COMPRESSED) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert bitcoin.p2pkh_address(G_COMPRESSED) == "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"


def test_wif_of_key_one() -> None:
    wif = bitcoin.wif_encode(KEY_ONE)
    assert wif == "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn"
    assert bitcoin.wif_decode(wif) == KEY_ONE


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32))
def test_wif_round_trip(secret: bytes) -> None:
    assert bitcoin.wif_decode(bitcoin.wif_encode(secret)) == secret


@pytest.mark.parametrize(
    ("wif", "why"),
    [
        ("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWo", "checksum"),
        ("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoW0", "alphabet"),  # '0' is not base58
        ("5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf", "uncompressed"),
        ("", "empty"),
        ("1" * 200, "too long"),
        (bitcoin.base58check_encode(b"\xef" + KEY_ONE + b"\x01"), "testnet prefix"),
        (bitcoin.base58check_encode(b"\x80" + KEY_ONE + b"\x02"), "bad compression flag"),
    ],
)
def test_bad_wif_refused(wif: str, why: str) -> None:
    with pytest.raises(bitcoin.BitcoinFormatError):
        bitcoin.wif_decode(wif)


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_base58_decoder_only_raises_its_own_error(text: str) -> None:
    with contextlib.suppress(bitcoin.BitcoinFormatError):
        bitcoin.base58check_decode(text)


def test_message_digest_length_prefix() -> None:
    short = bitcoin.message_digest(b"x" * 252)
    long = bitcoin.message_digest(b"x" * 253)  # switches to the 0xfd varint form
    expected = hashlib.sha256(
        hashlib.sha256(bitcoin.MESSAGE_MAGIC + b"\xfd\xfd\x00" + b"x" * 253).digest()
    ).digest()
    assert long == expected
    assert short != long
