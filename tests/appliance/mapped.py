"""The same bytes as each kind of buffer the ledger's readers take (appliance.zeros.ReadBuffer): as they are,
and through a read-only mmap of a temporary file, as recovery sees the disk. For property tests that must
hold for both."""

from __future__ import annotations

import contextlib
import mmap
import tempfile
from collections.abc import Iterator

from appliance.zeros import ReadBuffer

KINDS = ("bytes", "mmap")


@contextlib.contextmanager
def as_buffer(kind: str, data: bytes) -> Iterator[ReadBuffer]:
    """`data` as `kind`. Empty data stays bytes: nothing maps a zero length (nor does appliance.disk)."""
    if kind == "bytes" or not data:
        yield data
        return
    with tempfile.TemporaryFile() as file:
        file.write(data)
        file.flush()
        with mmap.mmap(file.fileno(), len(data), access=mmap.ACCESS_READ) as mapped:
            yield mapped
