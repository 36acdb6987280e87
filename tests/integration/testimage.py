"""The test image: the production initramfs plus a one-file overlay that makes it hand its test PKI out.

Why an overlay and not a flag: a production image must refuse `--test-pki` (appliance.main treats PID 1 or
the PRODUCTION marker as production), and nothing in the production archive may change for the tests.
The kernel unpacks concatenated cpio archives in order and a later regular file replaces an earlier one,
so appending one archive that holds a different `/init` gives a test image whose every other byte is the
production image's: the same kernel, runtime, wheels and appliance code, on the same virtio NIC.

The test `/init` differs from the production one in exactly these ways (nothing an attacker reaches):
- PID 1 still does the init duties (`pid1.boot`: mounts, device check against the manifest, power-off
  on any exit), then removes the PRODUCTION marker and forks: the appliance runs as PID 2 with
  `--test-pki` (and `--limit` overrides that shorten timeouts for a fast suite);
- PID 1 prints the exported CA and client identity on the console as one JSON line (`test.pki`): the
  console is the test's only channel into the VM besides the network it attacks;
- every MEMORY_SAMPLE_SECONDS PID 1 prints the appliance's resident memory (`test.memory`) for the soak.
"""

from __future__ import annotations

from pathlib import Path

from image import cpio, rootfs
from image.build import BOOT_PROLOGUE

PKI_DIRECTORY = "/run/pinata-test-pki"
PKI_FILES = ("ca.pem", "ca.key", "client.pem", "client.key", "server.pem", "server.key")
MEMORY_SAMPLE_SECONDS = 2.0
PKI_WAIT_SECONDS = 120.0

TEST_BODY = """\
import json, os, time
from appliance import pid1
info = pid1.boot()
try:
    os.remove("/app/appliance/PRODUCTION")
except FileNotFoundError:
    pass
argv = [*pid1.appliance_argv(info), "--test-pki", PKI, *EXTRA]
child = os.fork()
if child == 0:
    code = 70
    try:
        from appliance.main import main
        code = main(argv)
    finally:
        os._exit(code)
def say(record):
    record["t"] = round(time.time(), 3)
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\\n")
    sys.stdout.flush()
def status_kib(field):
    try:
        with open(f"/proc/{child}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return -1
    return -1
deadline = time.monotonic() + WAIT
exported = False
next_sample = 0.0
while True:
    done, status = os.waitpid(-1, os.WNOHANG)
    if done == child:
        say({"event": "test.appliance-exited", "status": status})
        break
    if not exported and all(os.path.exists(os.path.join(PKI, name)) for name in FILES):
        files = {}
        for name in FILES:
            with open(os.path.join(PKI, name)) as handle:
                files[name] = handle.read()
        say({"event": "test.pki", "files": files})
        exported = True
    if not exported and time.monotonic() > deadline:
        say({"event": "test.pki-missing"})
        exported = True
    if time.monotonic() >= next_sample:
        say({"event": "test.memory", "rss_kib": status_kib("VmRSS"), "anon_kib": status_kib("RssAnon")})
        next_sample = time.monotonic() + SAMPLE
    time.sleep(0.05 if not exported else 0.25)
"""


def init_body(limits: tuple[str, ...]) -> str:
    extra: list[str] = []
    for item in limits:
        extra += ["--limit", item]
    header = (
        f"PKI = {PKI_DIRECTORY!r}\nFILES = {PKI_FILES!r}\nEXTRA = {extra!r}\n"
        f"SAMPLE = {MEMORY_SAMPLE_SECONDS!r}\nWAIT = {PKI_WAIT_SECONDS!r}\n"
    )
    return BOOT_PROLOGUE + header + TEST_BODY  # the production prologue, then the constants the body uses


def overlay(limits: tuple[str, ...]) -> bytes:
    """A cpio archive holding only the test `/init`."""
    return cpio.serialize([cpio.regular("init", rootfs.init_script(init_body(limits)), 0o755)])


def write_test_initramfs(production: Path, target: Path, limits: tuple[str, ...]) -> Path:
    """The production archive, byte for byte, followed by the overlay (both are 4-byte aligned)."""
    data = production.read_bytes()
    if len(data) % 4:
        data += b"\0" * (-len(data) % 4)
    target.write_bytes(data + overlay(limits))
    return target
