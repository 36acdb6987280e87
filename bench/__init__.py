"""Benchmarks. Each module here (other than the harness) defines `run(quick: bool) -> Figures`.

Every figure is a ratio against a reference measured side by side in the same run, so the numbers
mean something on any machine, loaded or not: absolute times alone would not.
"""
