"""Entry point. As PID 1 (inside the image) the init duties in `appliance.pid1` run first."""

from __future__ import annotations

import importlib
import os
import sys


def _init_if_pid1() -> None:
    if os.getpid() != 1:
        return
    try:
        pid1 = importlib.import_module("appliance.pid1")
    except ImportError:
        return  # an image built before the init module existed: nothing to set up
    pid1.boot()


if __name__ == "__main__":
    _init_if_pid1()
    from appliance.main import main

    sys.exit(main())
