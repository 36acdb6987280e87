"""The cipher suites we negotiate: AEAD only, and what each needs from the key schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tls.constants import TLS12, TLS13, CipherSuite

Aead = Literal["aes-gcm", "chacha20-poly1305"]


@dataclass(frozen=True)
class SuiteInfo:
    """A cipher suite as the record layer and key schedule use it: the AEAD and its key length, the hash (HKDF in
    TLS 1.3, the PRF in TLS 1.2) and, for TLS 1.2, the certificate key type the suite is bound to. One frozen
    entry per suite in `SUITES`, shared by every connection."""

    suite: CipherSuite
    version: int
    aead: Aead
    key_length: int
    hash_name: str  # hashlib name: "sha256" / "sha384"
    hash_length: int
    auth: Literal["any", "ecdsa", "rsa"]  # TLS 1.2 suites are bound to the certificate's key type

    @property
    def name(self) -> str:
        return self.suite.name


SUITES: dict[int, SuiteInfo] = {
    info.suite: info
    for info in (
        SuiteInfo(CipherSuite.TLS_AES_128_GCM_SHA256, TLS13, "aes-gcm", 16, "sha256", 32, "any"),
        SuiteInfo(CipherSuite.TLS_AES_256_GCM_SHA384, TLS13, "aes-gcm", 32, "sha384", 48, "any"),
        SuiteInfo(CipherSuite.TLS_CHACHA20_POLY1305_SHA256, TLS13, "chacha20-poly1305", 32, "sha256", 32, "any"),
        SuiteInfo(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS12, "aes-gcm", 16, "sha256", 32, "ecdsa"),
        SuiteInfo(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS12, "aes-gcm", 32, "sha384", 48, "ecdsa"),
        SuiteInfo(CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS12, "chacha20-poly1305", 32,
                  "sha256", 32, "ecdsa"),
        SuiteInfo(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS12, "aes-gcm", 16, "sha256", 32, "rsa"),
        SuiteInfo(CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS12, "aes-gcm", 32, "sha384", 48, "rsa"),
        SuiteInfo(CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, TLS12, "chacha20-poly1305", 32,
                  "sha256", 32, "rsa"),
    )
}

DEFAULT_SUITES_13: tuple[int, ...] = (
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
)
DEFAULT_SUITES_12: tuple[int, ...] = (
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
)
