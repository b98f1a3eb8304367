from __future__ import annotations

import pytest

from detect_cli.compare.results import SpeedStats
from detect_cli.results import Speed


def test_speed_stats() -> None:
    speeds = [Speed(1.0, 10.0 * k, 2.0) for k in range(1, 11)]
    stats = SpeedStats.from_calls(speeds, [20.0 * k for k in range(1, 11)])
    assert stats.calls == 10 and stats.preprocess_ms == 1.0 and stats.inference_ms == 55.0
    assert stats.latency_p50_ms == 110.0 and stats.latency_p95_ms == pytest.approx(191.0)
    assert stats.images_per_s == pytest.approx(1000 / 110)
