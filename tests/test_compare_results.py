from __future__ import annotations

import math

import numpy as np
import pytest

from detect_cli.compare.loop import timed_runs
from detect_cli.compare.results import P95_MIN_CALLS, CompareSettings, SpeedStats
from detect_cli.results import Speed


def test_speed_stats() -> None:
    speeds = [Speed(1.0, 10.0 * k, 2.0) for k in range(1, 11)]
    stats = SpeedStats.from_calls(speeds, [20.0 * k for k in range(1, 11)])
    assert stats.calls == 10 and stats.preprocess_ms == 1.0 and stats.inference_ms == 55.0
    assert stats.latency_p50_ms == 110.0
    assert math.isnan(stats.latency_p95_ms), "10 calls: no p95 (it would be one of the slowest calls)"
    assert stats.images_per_s == pytest.approx(1000 / 110)


def test_p95_needs_twenty_calls() -> None:
    wall = [float(k) for k in range(1, P95_MIN_CALLS + 1)]
    stats = SpeedStats.from_calls([Speed(1.0, 1.0, 1.0)] * len(wall), wall)
    assert stats.latency_p95_ms == pytest.approx(float(np.percentile(wall, 95)))
    assert math.isnan(SpeedStats.from_calls([Speed(1.0, 1.0, 1.0)] * 19, wall[:19]).latency_p95_ms)


@pytest.mark.parametrize(
    ("inputs", "runs", "expected", "asked"),
    [
        (2, 1, 10, 1),  # the two sample pictures: 10 timed calls each
        (3, 2, 7, 2),  # 21 calls, the fewest runs reaching 20
        (20, 1, 1, None),  # enough already
        (100, 3, 3, None),
        (None, 1, 1, None),  # a live stream: its length is unknown, --runs is kept
    ],
)
def test_runs_rise_to_twenty_timed_calls(
    inputs: int | None, runs: int, expected: int, asked: int | None
) -> None:
    settings = timed_runs(CompareSettings(runs=runs), inputs)
    assert (settings.runs, settings.runs_asked) == (expected, asked)
    if inputs:
        assert inputs * settings.runs >= P95_MIN_CALLS
