"""Entry point. As PID 1 (inside the image) the init duties in `appliance.pid1` run first, and the
service's command line comes from what they found (the NIC, the data disk) when none was given."""

from __future__ import annotations

import importlib
import os
import sys


def _init_if_pid1(argv: list[str]) -> list[str]:
    if os.getpid() != 1:
        return argv
    try:
        pid1 = importlib.import_module("appliance.pid1")
    except ImportError:
        return argv  # an image built before the init module existed: nothing to set up
    info = pid1.boot()
    if not argv and hasattr(pid1, "appliance_argv"):
        return [str(arg) for arg in pid1.appliance_argv(info)]
    return argv


if __name__ == "__main__":
    arguments = _init_if_pid1(sys.argv[1:])
    from appliance.main import main

    sys.exit(main(arguments))
