"""The restore command's progress figures (files/s, ETA), computed from a controlled clock."""

from __future__ import annotations

import pytest

from pconv_cli.cli.restore import EtaColumn, FileRate, SpeedColumn


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_two_results_arriving_together_give_the_run_rate_not_their_spacing():
    clock = Clock()
    rate = FileRate(clock)
    rate.start(total=20, to_process=20)
    clock.now += 5.0  # the first batch is written after 5 s, both files at once
    rate.advance()
    clock.now += 0.000027
    rate.advance()
    assert rate.files_per_second() == pytest.approx(2 / 5.000027)
    assert rate.seconds_left() == pytest.approx(18 / (2 / 5.000027))
    assert SpeedColumn(rate).render(None).plain == "0.40 files/s"
    assert EtaColumn(rate).render(None).plain == "ETA 0:00:45"


def test_skipped_outputs_and_planning_failures_do_not_count_as_speed():
    clock = Clock()
    rate = FileRate(clock)
    rate.start(total=20, to_process=2)  # 18 outputs exist, reported at once
    for _ in range(18):
        rate.advance()
    assert rate.files_per_second() is None
    assert SpeedColumn(rate).render(None).plain == "– files/s"
    assert EtaColumn(rate).render(None).plain == "ETA -:--:--"
    clock.now += 4.0
    rate.advance()
    assert rate.files_per_second() == pytest.approx(0.25)
    assert rate.seconds_left() == pytest.approx(4.0)  # one file left at 0.25 files/s


def test_an_hour_long_eta_is_shown_in_hours():
    clock = Clock()
    rate = FileRate(clock)
    rate.start(total=1001, to_process=1001)
    clock.now += 4.0
    rate.advance()
    assert EtaColumn(rate).render(None).plain == "ETA 1:06:40"  # 1000 files at 0.25 files/s
