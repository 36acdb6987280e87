"""`make run`'s default path, booted: `python -m image.run` with QEMU's user network, the guest taking its
address by DHCP from QEMU, the host forwards on 127.0.0.1, the announcement, and Ctrl-C.

The runner is started as `make run` starts it, except for two things a shared test machine needs: the
forwards use free high ports instead of 8080/8443/10000/10002 (the runner's USER_FORWARDS, replaced before
`main()` reads it; everything else is the module's own code), and the data disk is a fresh one under the
test's directory. Everything stays on loopback: QEMU binds the forwards to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.image.vm import BOOT_TIMEOUT_SECONDS
from tests.integration.lab import Console

pytestmark = pytest.mark.qemu
ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_SECONDS = 30.0
ADDRESS = re.compile(r"\[run\] bitcoin address: (bc1q[02-9ac-hj-np-z]{38,58})\s")
RUNNER = """
import sys
from image import run
run.USER_FORWARDS = tuple((int(host), int(guest)) for host, guest in (pair.split(":") for pair in sys.argv[1:5]))
sys.argv = ["image.run", *sys.argv[5:]]
sys.exit(run.main())
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _wait_for(lines: list[str], pattern: re.Pattern[str], process: subprocess.Popen[bytes]) -> re.Match[str]:
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for line in list(lines):
            found = pattern.search(line + "\n")
            if found:
                return found
        assert process.poll() is None, "the runner ended:\n" + "\n".join(lines[-40:])
        time.sleep(0.2)
    raise AssertionError(f"no {pattern.pattern!r} within {BOOT_TIMEOUT_SECONDS} s:\n" + "\n".join(lines[-40:]))


def _holders(path: Path) -> list[int]:
    """Processes whose command line names `path` (the QEMU that has the disk open)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if str(path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_make_run_boots_with_user_networking_serves_on_the_forwards_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    http, https, mutual, reverse = _free_ports(4)
    forwards = [f"{http}:80", f"{https}:443", f"{mutual}:10000", f"{reverse}:10002"]
    disk = tmp_path / "data.img"
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, *forwards, "--disk", str(disk)], cwd=ROOT,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = Console()
    lines = output.lines
    reader = threading.Thread(target=output.pump, args=(runner.stdout,), daemon=True)
    reader.start()
    try:
        address = _wait_for(lines, ADDRESS, runner).group(1)
        text = output.text()
        assert f"[run] created data disk {disk}" in text
        command = next(line for line in lines if line.startswith("[run] qemu-system-x86_64 "))
        for host, guest in ((http, 80), (https, 443), (mutual, 10000), (reverse, 10002)):
            assert f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" in command
            assert f"127.0.0.1:{host}/  (guest port {guest})" in text
        assert " ip=" not in command  # the guest asks QEMU's DHCP server for its address
        (chosen,) = [line.split()[2] for line in lines if line.startswith("[run] accelerator: ")]
        assert f" -accel {chosen} " in command  # what the operator is told is what QEMU runs with

        with urllib.request.urlopen(f"http://127.0.0.1:{http}/", timeout=60) as response:
            assert response.status == 200
            assert address in response.read().decode()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(f"https://127.0.0.1:{https}/stats.json", timeout=60, context=context) as response:
            assert response.status == 200

        runner.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal does to the runner
        assert runner.wait(STOP_TIMEOUT_SECONDS) == 0, "\n".join(lines[-20:])
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for pid in _holders(disk):  # a QEMU the runner failed to stop: ours, by its disk
            os.kill(pid, signal.SIGKILL)
    reader.join(10)
    assert "[run] stopping the VM ..." in lines
    exited = [line for line in lines if line.startswith("[run] QEMU exited with ")]
    assert exited == ["[run] QEMU exited with 0"], lines[-20:]
    assert _holders(disk) == [], "QEMU outlived the runner"
