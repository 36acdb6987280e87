"""The target on an IPv6-only link: the namespace has no IPv4 address and runs no DHCP server, the target asks
DHCP (nobody answers) and serves over IPv6 meanwhile. Its own lab, beside the session's dual-stack one."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests import netns
from tests.integration.conftest import ARTEFACTS, target_kind
from tests.integration.lab import TARGET_IP6, Lab, assert_no_secret, lab

pytestmark = [pytest.mark.netns, pytest.mark.qemu]


@pytest.fixture(scope="module")
def ipv6_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not netns.available():
        pytest.skip("needs root, network namespaces and /dev/net/tun")
    with lab(target_kind(), tmp_path_factory.mktemp("ipv6-only"), ARTEFACTS / "ipv6-only", ipv4=False) as running:
        yield running
        assert running.alive(), "the IPv6-only target died:\n" + running.console.text()[-3000:]
        assert_no_secret(running.console.text().encode(), "the IPv6-only target's console")


def test_the_page_and_https_are_served_over_ipv6_with_no_ipv4_on_the_link(ipv6_only: Lab) -> None:
    ipv6_only.wait_ipv6()
    status, page = ipv6_only.http_get("/", family=socket.AF_INET6)
    assert status == 200
    assert b"bc1q" in page
    result = ipv6_only.shell("openssl", "s_client", "-6", "-connect", f"[{TARGET_IP6}]:443", "-brief", timeout=60)
    assert b"Protocol version" in result.stdout + result.stderr, result.stderr[-500:]
    stats = ipv6_only.stats(socket.AF_INET6)
    families, network = stats["by_family"], stats["network"]
    assert isinstance(families, dict)
    assert isinstance(network, dict)
    assert families["ipv6"] >= 2
    assert families["ipv4"] == 0
    assert network.get("internal-error", 0) == 0
