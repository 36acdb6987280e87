"""Settings for the whole suite.

Hypothesis profiles: `make test` (and so CI) runs with HYPOTHESIS_PROFILE=ci, which derandomizes the
property tests: the same examples on every run, so a CI result (and the branch coverage its floors judge,
tests/coverage_report.py) is reproducible and a failure can be rerun as it was. Run pytest without it and
each run draws new examples, which is how the property tests keep exploring.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
