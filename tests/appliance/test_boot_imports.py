"""What the boot does not import (issue 17): code no request needs before the appliance is ready waits for its
first use, since every module imported at boot costs its share of the boot under TCG."""

from __future__ import annotations

import json
import subprocess
import sys

NOT_AT_BOOT = (
    "tls.client", "tls.client_states",  # the client engine: the connect-back and reverse roles only
    "pyasn1", "pyasn1_modules.rfc5280", "pyasn1_modules.rfc4055",  # X.509's rare forms: RSASSA-PSS, x400Address
)


def test_the_boot_leaves_what_no_first_request_needs_for_its_first_use() -> None:
    script = "import json, sys; import appliance.main; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                           check=True).stdout))
    assert "appliance.ours_tls" in loaded  # the factory that makes client engines is there
    assert loaded.isdisjoint(NOT_AT_BOOT), sorted(loaded & set(NOT_AT_BOOT))
