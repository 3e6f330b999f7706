"""Time rules: parsing, snapshot ranges, sawtooth ranges, tail hops, tiles, days."""
import datetime

import pytest

from chronon_cli.agg import windows as W
from chronon_cli.spec import ttypes

D, H = ttypes.TimeUnit.DAYS, ttypes.TimeUnit.HOURS


def test_parse():
    assert W.parse("7d") == ttypes.Window(7, D)
    assert W.parse(" 12H ") == ttypes.Window(12, H)
    assert W.parse(ttypes.Window(3, D)) == ttypes.Window(3, D)
    assert W.parse(None) is None
    for bad in ["7", "d", "7w", "-1d", "0d", ttypes.Window(5, ttypes.TimeUnit.MINUTES), ttypes.Window(0, D), 7]:
        with pytest.raises(ValueError):
            W.parse(bad)


def test_constants_and_lengths():
    assert W.DAY_MS == 86_400_000 and W.HOUR_MS == 3_600_000 and W.FIVE_MINUTES_MS == 300_000
    assert W.window_ms("2d") == 2 * W.DAY_MS and W.window_ms("36h") == 36 * W.HOUR_MS
    assert W.window_ms(None) is None
    assert W.window_days("36h") == 2 and W.window_days("30d") == 30
    assert W.suffix("7d") == "_7d" and W.suffix("12h") == "_12h" and W.suffix(None) == ""
    assert W.key(ttypes.Window(7, D)) == "7d" and W.key(None) is None


def test_days():
    assert W.day_of(0) == datetime.date(1970, 1, 1)
    assert W.day_of(W.DAY_MS - 1) == datetime.date(1970, 1, 1)
    assert W.day_of(W.DAY_MS) == datetime.date(1970, 1, 2)
    assert W.day_of(-1) == datetime.date(1969, 12, 31)
    assert W.day_start_ms("2024-01-02") == 19724 * W.DAY_MS
    assert W.day_end_ms(datetime.date(2024, 1, 2)) == 19725 * W.DAY_MS
    assert W.day_number("2024-01-02") == 19724 and W.from_day_number(19724) == datetime.date(2024, 1, 2)


def test_snapshot_range():
    end = W.day_end_ms("2024-01-10")
    assert W.snapshot_range("1d", "2024-01-10") == (end - W.DAY_MS, end)
    assert W.snapshot_range("7d", datetime.date(2024, 1, 10)) == (W.day_start_ms("2024-01-04"), end)
    assert W.snapshot_range(None, "2024-01-10") == (None, end)
    with pytest.raises(ValueError, match="hour"):
        W.snapshot_range("12h", "2024-01-10")


def test_tail_hop_rule():
    assert W.tail_hop_ms("12d") == W.DAY_MS
    assert W.tail_hop_ms("11d") == W.HOUR_MS      # 264h >= 12h
    assert W.tail_hop_ms("12h") == W.HOUR_MS
    assert W.tail_hop_ms("11h") == W.FIVE_MINUTES_MS
    assert W.tail_hop_ms("288h") == W.DAY_MS      # 12 days in hours
    assert W.tail_hop_ms(None) == W.DAY_MS


def test_sawtooth_range():
    q = W.day_start_ms("2024-01-10") + 15 * W.HOUR_MS + 7 * 60_000 + 5
    assert W.sawtooth_range("1h", q) == (q - 5 - 2 * 60_000 - W.HOUR_MS, q)       # 14:05
    assert W.sawtooth_range("12h", q) == (W.day_start_ms("2024-01-10") + 3 * W.HOUR_MS, q)
    assert W.sawtooth_range("30d", q) == (W.day_start_ms("2023-12-11"), q)
    assert W.sawtooth_range(None, q) == (None, q)
    start, end = W.sawtooth_range("5d", q)
    assert W.window_ms("5d") <= end - start < W.window_ms("5d") + W.tail_hop_ms("5d")
    assert W.round_down(-1, W.HOUR_MS) == -W.HOUR_MS


def test_tile_size():
    assert W.tile_size_ms(["30d", "1d"]) == W.HOUR_MS
    assert W.tile_size_ms(["30d", "2h", None]) == W.FIVE_MINUTES_MS
    assert W.tile_size_ms([None]) == W.DAY_MS
    assert W.tile_size_ms([]) == W.DAY_MS
