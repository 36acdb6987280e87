"""Create `.venv` from the hash-pinned development lock (run by the Makefile with the system python3.11).

Installs only when the lock changed since the last successful install (a stamp holds the lock's hash),
so running it twice installs nothing. When the package registry can't be reached, pip's pages of
retries are condensed into one line that says so.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import venv
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements-dev.lock"
STAMP = VENV / ".lock-sha256"

UNREACHABLE = (
    "error: cannot reach the Python package registry (PyPI) to install the pinned dependencies;"
    " check the network, the proxy or PIP_INDEX_URL"
)
NETWORK_SIGNS = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Could not fetch URL",
)


def pip_install(
    python: Path, lock: Path, extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> str | None:
    """Install `lock` with `python`'s pip; None on success, else a message fit for one line of output
    (or pip's own output when the failure is not about the network)."""
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        # pip reports connection failures only at debug level; its --log file always has them.
        result = subprocess.run(
            [
                str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--log", log.name,
                "--require-hashes", "--only-binary=:all:", "--no-deps", *extra_args, "-r", str(lock),
            ],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
        detail = log.read()
    if result.returncode == 0:
        return None
    output = result.stdout + result.stderr
    if any(sign in detail for sign in NETWORK_SIGNS):
        return UNREACHABLE
    return f"{output.rstrip()}\nerror: installing {lock.name} failed"


def main() -> int:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return 0
    if not (VENV / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print(f"installing {LOCK.name} into .venv ...", flush=True)
    failure = pip_install(VENV / "bin" / "python", LOCK)
    if failure is not None:
        print(failure, file=sys.stderr)
        return 1
    STAMP.write_text(digest + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
