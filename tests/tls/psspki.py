"""A test PKI whose keys are id-RSASSA-PSS keys, made with the `openssl` command at test time.

`cryptography` can load RSA-PSS private keys but its certificate builder only writes rsaEncryption
SubjectPublicKeyInfos, so `openssl genpkey -algorithm RSA-PSS` and `openssl req -x509` / `openssl x509 -req`
make the keys and certificates. Nothing here is committed: files live in a pytest temporary directory.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tls.signatures import PrivateKey

HAVE_OPENSSL = shutil.which("openssl") is not None

_CA_EXT = """basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""
_LEAF_EXT = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = {eku}
authorityKeyIdentifier = keyid
{san}"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def pss_key_options(hash_name: str | None, salt: int | None = None, mgf1: str | None = None) -> list[str]:
    """genpkey options: no restriction (absent parameters) when hash_name is None."""
    options = ["-pkeyopt", "rsa_keygen_bits:2048"]
    if hash_name is not None:
        options += ["-pkeyopt", f"rsa_pss_keygen_md:{hash_name}",
                    "-pkeyopt", f"rsa_pss_keygen_mgf1_md:{mgf1 or hash_name}",
                    "-pkeyopt", f"rsa_pss_keygen_saltlen:{salt if salt is not None else _DIGEST_SIZE[hash_name]}"]
    return options


_DIGEST_SIZE = {"sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True)
class PemPair:
    """A certificate and its key, as files (for the CLIs and openssl) and as objects (for the engines)."""

    cert_path: Path
    key_path: Path

    @property
    def der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)

    @property
    def key(self) -> PrivateKey:
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, PrivateKey)
        return key


class PssPki:
    """A PSS-key root CA that issues PSS-key leaves (so certificate signatures are made by a PSS key too)."""

    def __init__(self, directory: Path, ca_hash: str | None = None) -> None:
        self.dir = directory
        self.ca = self._ca(ca_hash)

    def _ca(self, hash_name: str | None) -> PemPair:
        key = self.dir / "ca.key"
        cert = self.dir / "ca.pem"
        ext = self.dir / "ca.ext"
        ext.write_text(_CA_EXT)
        _openssl("genpkey", "-algorithm", "RSA-PSS", *pss_key_options(hash_name), "-out", str(key), cwd=self.dir)
        _openssl("req", "-x509", "-new", "-key", str(key), "-subj", "/CN=PSS Test CA", "-days", "30",
                 f"-{hash_name or 'sha256'}", "-sigopt", "rsa_pss_saltlen:digest", "-extensions", "v3_ca_pss",
                 "-config", str(self._config(ext, "v3_ca_pss")), "-out", str(cert), cwd=self.dir)
        return PemPair(cert, key)

    def _config(self, ext: Path, section: str) -> Path:
        config = self.dir / f"{section}.cnf"
        config.write_text(f"[req]\ndistinguished_name = dn\n[dn]\n[{section}]\n{ext.read_text()}")
        return config

    def leaf(self, name: str, *, server: bool, hash_name: str | None = None, salt: int | None = None,
             mgf1: str | None = None, key_algorithm: str = "RSA-PSS", sign_hash: str = "sha256") -> PemPair:
        """A leaf with an id-RSASSA-PSS key (restricted to `hash_name` if given) signed by the PSS CA;
        `key_algorithm="RSA"` makes an rsaEncryption leaf under the same CA."""
        key = self.dir / f"{name}.key"
        csr = self.dir / f"{name}.csr"
        cert = self.dir / f"{name}.pem"
        ext = self.dir / f"{name}.ext"
        san = "subjectAltName = DNS:localhost\n" if server else ""
        ext.write_text(_LEAF_EXT.format(eku="serverAuth" if server else "clientAuth", san=san))
        options = (pss_key_options(hash_name, salt, mgf1) if key_algorithm == "RSA-PSS"
                   else ["-pkeyopt", "rsa_keygen_bits:2048"])
        _openssl("genpkey", "-algorithm", key_algorithm, *options, "-out", str(key), cwd=self.dir)
        _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={'localhost' if server else name}",
                 "-config", str(self._config(ext, "unused")), "-out", str(csr), cwd=self.dir)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca.cert_path), "-CAkey", str(self.ca.key_path),
                 "-set_serial", str(zlib.crc32(name.encode()) + 2), "-days", "30", f"-{sign_hash}",
                 "-sigopt", "rsa_pss_saltlen:digest", "-extfile", str(ext), "-out", str(cert), cwd=self.dir)
        return PemPair(cert, key)
