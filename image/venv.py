"""Create `.venv` from the hash-pinned development lock (run by the Makefile with the system python3.11).

Installs only when the lock changed since the last successful install (a stamp holds the lock's hash),
so running it twice installs nothing. When the package registry can't be reached, pip's pages of
retries are condensed into one line that says so.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements-dev.lock"
STAMP = VENV / ".lock-sha256"

NETWORK_SIGNS = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Could not fetch URL",
    "No matching distribution found",
)


def main() -> int:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return 0
    if not (VENV / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print(f"installing {LOCK.name} into .venv ...", flush=True)
    result = subprocess.run(
        [
            str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--require-hashes", "--only-binary=:all:", "--no-deps", "-r", str(LOCK),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(sign in output for sign in NETWORK_SIGNS):
            print("error: cannot reach the Python package registry (PyPI) to install the pinned dependencies;"
                  " check the network or PIP_INDEX_URL", file=sys.stderr)
        else:
            sys.stderr.write(output)
            print(f"error: installing {LOCK.name} failed", file=sys.stderr)
        return 1
    STAMP.write_text(digest + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
