"""The network-namespace helpers, under the name the tests have always imported (`from tests import netns`).

They live in `bench.lab`, because benchmarks need them too and may not import tests/ (`.importlinter`).
"""

from bench.lab import CLONE_NEWNET, available, ip, namespace, run_in

__all__ = ["CLONE_NEWNET", "available", "ip", "namespace", "run_in"]
