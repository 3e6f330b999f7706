"""Time rules of SEMANTICS §1-§2, in one place. Engines call these; they never re-derive them.

All times are epoch milliseconds UTC (``int``); days are ``datetime.date`` (UTC days).
A window is a ``ttypes.Window``; ``None`` means lifetime (all history before the query time).
"""
from __future__ import annotations

import datetime
import re
from typing import Iterable, Optional, Tuple, Union

from chronon_cli.spec import ttypes

MINUTE_MS = 60 * 1000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
FIVE_MINUTES_MS = 5 * MINUTE_MS

EPOCH = datetime.date(1970, 1, 1)

_WINDOW_RE = re.compile(r"^\s*(\d+)\s*([dh])\s*$", re.IGNORECASE)

WindowLike = Union[None, str, ttypes.Window]


def parse(window: WindowLike) -> Optional[ttypes.Window]:
    """``"7d"`` / ``"12h"`` / ``Window(7, TimeUnit.DAYS)`` -> ``Window``; ``None`` stays ``None`` (lifetime).

    Raises ``ValueError`` for anything else, for a non-positive length, or for units other than
    hours and days.
    """
    if window is None:
        return None
    if isinstance(window, str):
        match = _WINDOW_RE.match(window)
        if not match:
            raise ValueError(f"invalid window {window!r}: use a string like '7d' or '12h'")
        unit = ttypes.TimeUnit.DAYS if match.group(2).lower() == "d" else ttypes.TimeUnit.HOURS
        window = ttypes.Window(length=int(match.group(1)), timeUnit=unit)
    if not isinstance(window, ttypes.Window):
        raise ValueError(f"invalid window {window!r}")
    if window.timeUnit not in (ttypes.TimeUnit.DAYS, ttypes.TimeUnit.HOURS):
        raise ValueError(f"invalid window {window!r}: the unit must be hours or days")
    if window.length is None or int(window.length) <= 0:
        raise ValueError(f"invalid window {window!r}: the length must be positive")
    return ttypes.Window(length=int(window.length), timeUnit=window.timeUnit)


def window_ms(window: WindowLike) -> Optional[int]:
    """Length in milliseconds; ``None`` for lifetime."""
    w = parse(window)
    if w is None:
        return None
    return w.length * (DAY_MS if w.timeUnit == ttypes.TimeUnit.DAYS else HOUR_MS)


def window_days(window: WindowLike) -> Optional[int]:
    """Length in whole days (hour windows round up); ``None`` for lifetime."""
    ms = window_ms(window)
    return None if ms is None else -(-ms // DAY_MS)


def is_day_window(window: WindowLike) -> bool:
    w = parse(window)
    return w is not None and w.timeUnit == ttypes.TimeUnit.DAYS


def suffix(window: WindowLike) -> str:
    """Feature-name suffix (SEMANTICS §4): ``"_7d"``, ``"_12h"``, ``""`` for lifetime."""
    w = parse(window)
    if w is None:
        return ""
    return f"_{w.length}{'d' if w.timeUnit == ttypes.TimeUnit.DAYS else 'h'}"


def key(window: WindowLike) -> Optional[str]:
    """Canonical short form: ``"7d"``, ``"12h"``, ``None`` for lifetime (hashable, JSON-able)."""
    s = suffix(window)
    return s[1:] if s else None


# ---------------------------------------------------------------- days

def day_of(ts_ms: int) -> datetime.date:
    """The UTC day containing ``ts_ms``."""
    return EPOCH + datetime.timedelta(days=int(ts_ms) // DAY_MS)


def day_number(day: Union[datetime.date, str]) -> int:
    """Days since 1970-01-01 (what Arrow's date32 stores). Accepts ``date`` or ``"YYYY-MM-DD"``."""
    return (as_date(day) - EPOCH).days


def from_day_number(n: int) -> datetime.date:
    return EPOCH + datetime.timedelta(days=int(n))


def as_date(day: Union[datetime.date, datetime.datetime, str]) -> datetime.date:
    if isinstance(day, datetime.datetime):
        return day.date()
    if isinstance(day, datetime.date):
        return day
    if isinstance(day, str):
        return datetime.date.fromisoformat(day)
    raise ValueError(f"not a day: {day!r}")


def day_start_ms(day: Union[datetime.date, str]) -> int:
    """Epoch millis of ``day`` 00:00 UTC."""
    return day_number(day) * DAY_MS


def day_end_ms(day: Union[datetime.date, str]) -> int:
    """Epoch millis of the next day 00:00 UTC (exclusive end of ``day``)."""
    return day_start_ms(day) + DAY_MS


# ---------------------------------------------------------------- ranges

def snapshot_range(window: WindowLike, ds: Union[datetime.date, str]) -> Tuple[Optional[int], int]:
    """Daily-snapshot range ``[start_ms, end_ms)`` of ``window`` for partition ``ds``.

    ``end_ms`` is ``ds + 1 day``; ``start_ms`` is ``end_ms - W``, or ``None`` for lifetime.
    Hour windows are rejected for SNAPSHOT (``ValueError``).
    """
    w = parse(window)
    end = day_end_ms(ds)
    if w is None:
        return None, end
    if w.timeUnit != ttypes.TimeUnit.DAYS:
        raise ValueError(f"hour window {suffix(w)[1:]} is not allowed for daily snapshots")
    return end - window_ms(w), end


def tail_hop_ms(window: WindowLike) -> int:
    """Hop of the sawtooth tail: W >= 12 days -> 1 day; W >= 12 hours -> 1 hour; else 5 minutes.

    Lifetime windows have no tail; they get the daily hop.
    """
    ms = window_ms(window)
    if ms is None or ms >= 12 * DAY_MS:
        return DAY_MS
    if ms >= 12 * HOUR_MS:
        return HOUR_MS
    return FIVE_MINUTES_MS


def round_down(ts_ms: int, hop_ms: int) -> int:
    """Largest multiple of ``hop_ms`` that is ``<= ts_ms`` (floor, also for negative times)."""
    return (int(ts_ms) // hop_ms) * hop_ms


def sawtooth_range(window: WindowLike, q_ms: int) -> Tuple[Optional[int], int]:
    """Point-in-time range ``[round_down(q - W, hop), q)``; ``start`` is ``None`` for lifetime."""
    ms = window_ms(window)
    if ms is None:
        return None, int(q_ms)
    return round_down(int(q_ms) - ms, tail_hop_ms(window)), int(q_ms)


def tile_size_ms(windows: Iterable[WindowLike]) -> int:
    """Streaming tile size: the smallest tail hop among ``windows`` (1 day if there are none)."""
    hops = [tail_hop_ms(w) for w in windows]
    return min(hops) if hops else DAY_MS
