"""The speed and time left a running job reports (`jobs/running.RateMeter`): pure logic."""

from __future__ import annotations

from filestore.jobs.running import RateMeter


class TestRateMeter:
    def test_no_rate_from_one_point(self) -> None:
        assert RateMeter().add(0, now=100.0) is None

    def test_rate_over_the_window_forgets_a_slow_start(self) -> None:
        meter = RateMeter(window=10.0)
        meter.add(0, now=0.0)
        # A slow first batch (start-up), then a steady 1,000 rows/s.
        assert meter.add(100, now=5.0) == 20.0
        rate = None
        for second in range(6, 40):
            rate = meter.add(100 + 1000 * (second - 5), now=float(second))
        assert rate == 1000.0

    def test_eta_is_the_rest_at_that_rate(self) -> None:
        assert RateMeter.eta(1000.0, total=50_000, processed=20_000) == 30.0
        assert RateMeter.eta(1000.0, total=10, processed=20) == 0.0
        assert RateMeter.eta(None, total=10, processed=0) is None
        assert RateMeter.eta(1000.0, total=None, processed=0) is None
