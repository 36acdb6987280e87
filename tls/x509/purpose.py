"""What the caller wants a certificate for: the TLS role (EKU) and the peer's name, if any."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from tls.x509 import oids


class Purpose(Enum):
    SERVER_AUTH = "serverAuth"
    CLIENT_AUTH = "clientAuth"

    @property
    def eku_oid(self) -> str:
        return oids.EKU_SERVER_AUTH if self is Purpose.SERVER_AUTH else oids.EKU_CLIENT_AUTH


@dataclass(frozen=True)
class PeerName:
    """The name the peer must hold in its SubjectAltName: a DNS host name, an IP address or a mailbox."""

    kind: Literal["DNS", "IP", "RFC822"]
    value: str
