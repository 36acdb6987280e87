"""bench.image's serving figure: the median of several boots, one real boot's timeline with it, and boots that
never served counted as the slowest rather than left out."""

from __future__ import annotations

from bench import image


def _boot(http_200: float) -> image.Boot:
    boot = image.Boot()
    boot.marks.update({"ready": http_200 - 0.1, "http-200": http_200})
    return boot


def _failed() -> image.Boot:
    return image.Boot(failure="no HTTP 200 within 120 s")


def test_the_figure_is_the_median_boot_not_the_fastest_or_the_first() -> None:
    boots = [_boot(value) for value in (2.4, 1.9, 3.1, 2.0, 2.2)]
    median = image.median_boot(boots)
    assert median is boots[4]  # 2.2: the boot itself, so its timeline is one that happened
    assert median.marks["http-200"] == 2.2


def test_an_even_number_of_boots_gives_the_lower_middle_one() -> None:
    boots = [_boot(value) for value in (2.6, 2.1, 2.3, 1.8)]
    assert image.median_boot(boots) is boots[1]  # 1.8, 2.1 | 2.3, 2.6: a real boot, not an average of two


def test_one_boot_is_its_own_median() -> None:
    only = _boot(2.05)
    assert image.median_boot([only]) is only


def test_a_boot_that_never_served_counts_as_the_slowest() -> None:
    boots = [_boot(1.8), _failed(), _boot(2.3), _boot(1.9), _boot(2.1)]
    assert image.median_boot(boots) is boots[4]  # 1.8, 1.9, 2.1 | 2.3, failed: not 1.9 of the four that served


def test_when_half_never_served_the_median_is_a_failure() -> None:
    boots = [_failed(), _boot(1.8), _failed(), _boot(1.9), _failed()]
    assert image.median_boot(boots).failure is not None
