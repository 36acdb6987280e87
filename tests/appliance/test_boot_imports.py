"""What the boot does not import (issue 17): code no request needs before the appliance is ready waits for its
first use, since every module imported at boot costs its share of the boot under TCG."""

from __future__ import annotations

import json
import subprocess
import sys

from appliance.deferred_imports import DEFERRED

X509_ON_FIRST_USE = ("parse", "model", "keys", "signature", "extensions", "names", "path", "validation")
"""Our X.509 beyond what the boot PKI writes and peeks at (tls.x509's names are imported on first use): the
parser, the model, the key decoders and path validation, first needed by the first mutual-TLS handshake or
proof: about 35 ms of the boot in the VM."""
NOT_AT_BOOT = (
    "tls.client", "tls.client_states",  # the client engine: the connect-back and reverse roles only
    # The server engine and what only the engines use (the handshake, records, key schedule, messages): the
    # first TLS connection imports them, after the RSA leaves it waits for.
    "tls.server", "tls.server_states", "tls.connection", "tls.config", "tls.record", "tls.keyschedule",
    "tls.messages", "hmac",
    # The key exchange and the TLS constants and errors it needs (about 15 ms of the VM's boot): the boot's
    # certificates encode their EC keys with tls.ec_point.
    "tls.groups", "tls.constants", "tls.errors",
    "html",  # its package loads html.entities (2,231 references, for unescape); pages escape with appliance.markup
    "pyasn1", "pyasn1_modules.rfc5280", "pyasn1_modules.rfc4055",  # X.509's rare forms: RSASSA-PSS, x400Address
    # The boot PKI writes its DER itself (appliance.certificate_der): cryptography's X.509 layer, and the email
    # and calendar modules it loads, were a fifth of the boot's imports in the VM; only tests parse with it.
    "cryptography.x509", "email",
    # The public serialization package (its __init__ loads serialization.ssh, and with it padding, random,
    # bisect...): about 50 ms of the VM's boot. Key shares and SubjectPublicKeyInfos are written without it.
    "cryptography.hazmat.primitives.serialization",
    *("tls.x509." + name for name in X509_ON_FIRST_USE),
)
NOT_FOR_THE_PKI = ("cryptography.x509", "email", "cryptography.hazmat.primitives.serialization")


def test_the_boot_leaves_what_no_first_request_needs_for_its_first_use() -> None:
    script = "import json, sys; import appliance.main; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                           check=True).stdout))
    assert "appliance.ours_tls" in loaded  # the factory that makes the engines is there
    assert loaded.isdisjoint(NOT_AT_BOOT), sorted(loaded & set(NOT_AT_BOOT))


def test_generating_the_boot_pki_loads_no_x509_library() -> None:
    """The first test sees the imports only: the PKI is generated after them, at boot, and must not load
    cryptography.x509 or serialization on the way (an import inside a function would escape the first test)."""
    script = ("import json, sys, os, datetime; import appliance.pki; "
              "appliance.pki.generate(datetime.datetime.now(datetime.UTC), os.urandom); "
              "print(json.dumps(sorted(sys.modules)))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                           check=True).stdout))
    assert "appliance.certificate_der" in loaded
    assert loaded.isdisjoint(NOT_FOR_THE_PKI), sorted(loaded & set(NOT_FOR_THE_PKI))


RUN_TO_FIRST_PAGE = """
import asyncio, io, json, random, sys, tempfile
from pathlib import Path
from adapters.network import NetworkConfig, start_network
from appliance.config import Limits, Ports
from appliance.disk import Disk
from appliance.log import JsonLog
from appliance.main import SYSTEM, assemble
from appliance.net import UserspaceNetwork
from netstack.config import parse_static
from netstack.link.memory import Impairment, memory_link_pair

async def main():
    link_a, link_b = memory_link_pair(bytes.fromhex("020000000a01"), bytes.fromhex("020000000a02"), Impairment(),
                                      random.Random(7))
    ours = await start_network(link_a, NetworkConfig(parse_static("10.66.0.2/24")))
    peer = await start_network(link_b, NetworkConfig(parse_static("10.66.0.1/24")))
    disk = Disk(Path(tempfile.mkdtemp()) / "disk")
    appliance = await assemble(disk=disk, network=UserspaceNetwork(ours, "memory"), tls="ours", limits=Limits(),
                               ports=Ports(), log=JsonLog(io.StringIO()), manifest=None, sources=SYSTEM)
    try:
        at_ready = sorted(sys.modules)
        reader, writer = await peer.open_stream("10.66.0.2", 80)
        writer.write(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
        page = await asyncio.wait_for(reader.read(), 60)
        writer.close()
        return at_ready, sorted(sys.modules), page[:15].decode()
    finally:
        await appliance.stop()
        peer.close()
        disk.close()

print(json.dumps(asyncio.run(main())))
"""


def test_the_run_to_ready_and_the_first_page_import_no_tls_engine() -> None:
    """The imports alone are the first test's; this runs the appliance (disk, PKI, network, listeners) to ready
    and serves one page over our stack, and the TLS engines and X.509 validation must still not be loaded: an
    import moved back into the boot path (a factory building an engine early, say) would put them there."""
    result = subprocess.run([sys.executable, "-c", RUN_TO_FIRST_PAGE], capture_output=True, text=True, check=True)
    at_ready, after_page, status = json.loads(result.stdout.splitlines()[-1])
    assert status.startswith("HTTP/1.1 200")
    engines = {"tls.server", "tls.server_states", "tls.client", "tls.connection", "tls.config", "tls.groups",
               "tls.constants", "tls.errors", "html",
               *("tls.x509." + name for name in X509_ON_FIRST_USE)}
    assert engines.isdisjoint(at_ready), sorted(engines & set(at_ready))
    assert engines.isdisjoint(after_page), sorted(engines & set(after_page))


def test_the_modules_the_boot_defers_are_still_unrun_after_the_first_page() -> None:
    """appliance.deferred_imports lists stdlib modules the boot imports but does not use: run with that list
    deferred, the boot and the first page must leave every one of them unrun, or the list is wrong (the module
    would then run on the boot's path anyway, after a detour)."""
    script = ("from appliance import deferred_imports\ndeferred_imports.install()\n" + RUN_TO_FIRST_PAGE).replace(
        "print(json.dumps(asyncio.run(main())))",
        "print(json.dumps([asyncio.run(main())[2], deferred_imports.deferred()]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    status, unrun = json.loads(result.stdout.splitlines()[-1])
    assert status.startswith("HTTP/1.1 200")
    assert unrun == sorted(DEFERRED)
