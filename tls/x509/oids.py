"""Object identifiers the validator understands, as dotted strings (what pyasn1 prints)."""

from __future__ import annotations

from typing import Final

# Extensions (RFC 5280 4.2)
SUBJECT_KEY_IDENTIFIER: Final = "2.5.29.14"
KEY_USAGE: Final = "2.5.29.15"
SUBJECT_ALT_NAME: Final = "2.5.29.17"
ISSUER_ALT_NAME: Final = "2.5.29.18"
BASIC_CONSTRAINTS: Final = "2.5.29.19"
NAME_CONSTRAINTS: Final = "2.5.29.30"
CRL_DISTRIBUTION_POINTS: Final = "2.5.29.31"
CERTIFICATE_POLICIES: Final = "2.5.29.32"
POLICY_MAPPINGS: Final = "2.5.29.33"
AUTHORITY_KEY_IDENTIFIER: Final = "2.5.29.35"
POLICY_CONSTRAINTS: Final = "2.5.29.36"
EXTENDED_KEY_USAGE: Final = "2.5.29.37"
INHIBIT_ANY_POLICY: Final = "2.5.29.54"
AUTHORITY_INFO_ACCESS: Final = "1.3.6.1.5.5.7.1.1"

# Extended key usages
EKU_SERVER_AUTH: Final = "1.3.6.1.5.5.7.3.1"
EKU_CLIENT_AUTH: Final = "1.3.6.1.5.5.7.3.2"
EKU_ANY: Final = "2.5.29.37.0"

# Subject public key algorithms
RSA_ENCRYPTION: Final = "1.2.840.113549.1.1.1"
RSASSA_PSS: Final = "1.2.840.113549.1.1.10"
EC_PUBLIC_KEY: Final = "1.2.840.10045.2.1"
ED25519: Final = "1.3.101.112"
ED448: Final = "1.3.101.113"
DSA: Final = "1.2.840.10040.4.1"

# Named curves
SECP256R1: Final = "1.2.840.10045.3.1.7"
SECP384R1: Final = "1.3.132.0.34"
SECP521R1: Final = "1.3.132.0.35"

# Signature algorithms
MD5_WITH_RSA: Final = "1.2.840.113549.1.1.4"
SHA1_WITH_RSA: Final = "1.2.840.113549.1.1.5"
SHA256_WITH_RSA: Final = "1.2.840.113549.1.1.11"
SHA384_WITH_RSA: Final = "1.2.840.113549.1.1.12"
SHA512_WITH_RSA: Final = "1.2.840.113549.1.1.13"
ECDSA_WITH_SHA1: Final = "1.2.840.10045.4.1"
ECDSA_WITH_SHA256: Final = "1.2.840.10045.4.3.2"
ECDSA_WITH_SHA384: Final = "1.2.840.10045.4.3.3"
ECDSA_WITH_SHA512: Final = "1.2.840.10045.4.3.4"
DSA_WITH_SHA1: Final = "1.2.840.10040.4.3"

# Hashes and mask generation (RFC 4055)
SHA1: Final = "1.3.14.3.2.26"
SHA256: Final = "2.16.840.1.101.3.4.2.1"
SHA384: Final = "2.16.840.1.101.3.4.2.2"
SHA512: Final = "2.16.840.1.101.3.4.2.3"
MD5: Final = "1.2.840.113549.2.5"
MGF1: Final = "1.2.840.113549.1.1.8"

# Name attributes that need special handling
COUNTRY_NAME: Final = "2.5.4.6"
COMMON_NAME: Final = "2.5.4.3"
EMAIL_ADDRESS: Final = "1.2.840.113549.1.9.1"
