"""Write the committed seed corpus and dictionaries: `python -m fuzz.seeds [NAME...]` (all targets by default).

Seeds come from each target's `seeds()`, made with the project's own encoders (and, for the TLS engines, real
conversations with our own engines, fuzz/tls_script.py); each is replayed through its target before it is
written, so a committed seed always runs clean. A file is named after its seed, so regenerating rewrites
the same names; seeds that carry a boot PKI certificate come out with other signature bytes each time (OpenSSL
draws the ECDSA nonces) and work either way, so leave those unchanged unless what they hold changed.
Dictionaries (fuzz/dictionaries.py) are written beside them.
"""

from __future__ import annotations

import sys

from fuzz.dictionaries import DICTIONARIES, render
from fuzz.registry import TARGETS, find
from fuzz.target import DICTS_DIR


def write(names: list[str]) -> None:
    targets = [find(name) for name in names] if names else list(TARGETS)
    for target in targets:
        module = target.load()
        made = module.seeds()
        target.corpus.mkdir(parents=True, exist_ok=True)
        for old in target.corpus.iterdir():
            old.unlink()
        for name, data in made.items():
            module.fuzz_one(data)
            (target.corpus / name).write_bytes(data)
        print(f"{target.name}: {len(made)} seeds")
    DICTS_DIR.mkdir(parents=True, exist_ok=True)
    for name, tokens in DICTIONARIES.items():
        if not names or name in names:
            (DICTS_DIR / f"{name}.dict").write_text(render(name, tokens()))


if __name__ == "__main__":
    write(sys.argv[1:])
