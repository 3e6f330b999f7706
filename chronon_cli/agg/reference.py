"""The naive reference evaluator: every feature straight from its definition, slowly and obviously.

It is the oracle of the engine tests. It shares no aggregation code with the optimized path: for
each key, date (or query) and feature it filters the events in the window and applies the
operation's definition to the plain list of values.

Approximate operations get their *exact* answer here: APPROX_UNIQUE_COUNT the distinct count,
APPROX_PERCENTILE the nearest-rank percentile (the smallest value whose rank ``i/n >= p``, which
is what a KLL sketch returns while it is exact, n <= k), APPROX_HISTOGRAM_K the exact top-k
counts. Engines equal these while their IRs are exact and are within the sketches' documented
error bounds otherwise.

Events and queries are dicts. Events carry the key columns, the input (and bucket) columns,
``ts`` (epoch ms) and/or ``ds`` (a date or ``YYYY-MM-DD``; used for the time when ``ts`` is
absent). Results are dicts with plain Python values (maps as dicts, lists as lists).
"""
from __future__ import annotations

import datetime
import json
import math
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from chronon_cli.spec import ttypes

O = ttypes.Operation
_DAY = 86_400_000
_HOUR = 3_600_000
_EPOCH = datetime.date(1970, 1, 1)

_K_OPS = {O.LAST_K: "last", O.FIRST_K: "first", O.TOP_K: "top", O.BOTTOM_K: "bottom"}


def _day(value) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value))


def _event_time(event) -> Optional[int]:
    if event.get("ts") is not None:
        return int(event["ts"])
    if event.get("ds") is not None:
        return (_day(event["ds"]) - _EPOCH).days * _DAY
    return None


def _window_ms(w: Optional[ttypes.Window]) -> Optional[int]:
    if w is None:
        return None
    return w.length * (_DAY if w.timeUnit == ttypes.TimeUnit.DAYS else _HOUR)


def _feature_name(agg: ttypes.Aggregation, window, bucket) -> str:
    op = agg.operation
    if op in _K_OPS:
        op_part = f"{_K_OPS[op]}{int(agg.argMap['k'])}"
    else:
        op_part = O._VALUES_TO_NAMES[op].lower()
    name = f"{agg.inputColumn}_{op_part}"
    if window is not None:
        name += f"_{window.length}{'d' if window.timeUnit == ttypes.TimeUnit.DAYS else 'h'}"
    if bucket is not None:
        name += f"_by_{bucket}"
    return name


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _string_of(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else str(int(v))


def _finite(x):
    if x is None:
        return None
    return x if not isinstance(x, float) or math.isfinite(x) else None


def _arg(agg, name, default=None):
    args = agg.argMap or {}
    return int(args[name]) if name in args else default


def _apply(agg: ttypes.Aggregation, items: List[Tuple[Optional[int], Any]]):
    """The operation's definition on (ts, value) items (values already non-null, non-NaN)."""
    op = agg.operation
    values = [v for _, v in items]
    if not values:
        return None
    n = len(values)
    if op == O.COUNT:
        return n
    if op == O.SUM:
        if isinstance(values[0], float):
            return _finite(sum(values))
        return sum(int(v) for v in values)
    if op == O.AVERAGE:
        return _finite(sum(float(v) for v in values) / n)
    if op in (O.VARIANCE, O.SKEW, O.KURTOSIS):
        xs = [float(v) for v in values]
        mean = sum(xs) / n
        m2 = sum((x - mean) ** 2 for x in xs)
        if op == O.VARIANCE:
            return _finite(m2 / n)
        if n < (3 if op == O.SKEW else 4) or m2 <= 0 or math.sqrt(m2 / n) <= 1e-9 * abs(mean):
            return None
        if op == O.SKEW:
            m3 = sum((x - mean) ** 3 for x in xs)
            return _finite(math.sqrt(n) * m3 / m2 ** 1.5)
        m4 = sum((x - mean) ** 4 for x in xs)
        return _finite(n * m4 / (m2 * m2) - 3.0)
    if op == O.MIN:
        return _finite(min(values))
    if op == O.MAX:
        return _finite(max(values))
    if op == O.TOP_K:
        return sorted(values, reverse=True)[: _arg(agg, "k")]
    if op == O.BOTTOM_K:
        return sorted(values)[: _arg(agg, "k")]
    timed = sorted((t, v) for t, v in items if t is not None)
    if op in (O.FIRST, O.LAST, O.FIRST_K, O.LAST_K) and not timed:
        return None
    if op == O.FIRST:
        return _finite(timed[0][1])
    if op == O.LAST:
        return _finite(timed[-1][1])
    if op == O.FIRST_K:
        return [v for _, v in timed[: _arg(agg, "k")]]
    if op == O.LAST_K:
        return [v for _, v in timed[::-1][: _arg(agg, "k")]]
    if op in (O.UNIQUE_COUNT, O.APPROX_UNIQUE_COUNT):
        return len(set(values))
    if op == O.BOUNDED_UNIQUE_COUNT:
        return min(len(set(values)), _arg(agg, "k", 8))
    if op in (O.HISTOGRAM, O.APPROX_HISTOGRAM_K):
        counts = Counter(_string_of(v) for v in values)
        k = _arg(agg, "k", 0 if op == O.HISTOGRAM else 8)
        if k > 0:
            counts = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k])
        return dict(sorted(counts.items()))
    if op == O.APPROX_PERCENTILE:
        raw = (agg.argMap or {}).get("percentiles")
        ps = json.loads(raw) if raw else [0.5]
        xs = sorted(float(v) for v in values)
        return [xs[min(max(math.ceil(p * n) - 1, 0), n - 1)] for p in ps]
    raise ValueError(f"unknown operation {op}")


def _is_map_value(raw) -> bool:
    return isinstance(raw, dict) or (isinstance(raw, list) and bool(raw) and isinstance(raw[0], tuple))


def _elements(agg: ttypes.Aggregation, event, bucket) -> List[Tuple[Optional[str], Any]]:
    """(subkey, value) pairs one event contributes (lists flattened, maps per key, buckets)."""
    raw = event.get(agg.inputColumn)
    sub = None
    if bucket is not None:
        if event.get(bucket) is None:
            return []
        sub = _string_of(event[bucket])
    if raw is None:
        return []
    if _is_map_value(raw):
        pairs = raw.items() if isinstance(raw, dict) else raw
        return [(k, v) for k, v in pairs if k is not None and not _is_missing(v)]
    if isinstance(raw, (list, tuple)):
        return [(sub, v) for v in raw if not _is_missing(v)]
    return [] if _is_missing(raw) else [(sub, raw)]


def _feature(agg, window, bucket, events, is_map) -> Any:
    groups: Dict[Optional[str], List[Tuple[Optional[int], Any]]] = {}
    for e in events:
        for sub, v in _elements(agg, e, bucket):
            groups.setdefault(sub, []).append((e.get("ts"), v))
    if bucket is None and not is_map:
        return _apply(agg, groups.get(None, []))
    out = {}
    for sub in sorted(groups):
        value = _apply(agg, groups[sub])
        if value is not None:
            out[sub] = value
    return out or None


def _features(group_by, events_in_window) -> Dict[str, Any]:
    """events_in_window(window) -> events of the key in that window."""
    out = {}
    for agg in group_by.aggregations:
        for bucket in agg.buckets or [None]:
            for window in agg.windows or [None]:
                evs = events_in_window(window)
                is_map = any(_is_map_value(e.get(agg.inputColumn)) for e in evs)
                out[_feature_name(agg, window, bucket)] = _feature(agg, window, bucket, evs, is_map)
    return out


def _by_key(group_by, events):
    keys = list(group_by.keyColumns)
    grouped: Dict[tuple, list] = {}
    for e in events:
        k = tuple(e.get(c) for c in keys)
        if all(v is None for v in k):
            continue
        grouped.setdefault(k, []).append(e)
    return keys, grouped


def snapshot(group_by: ttypes.GroupBy, events: Sequence[dict], dates: Sequence) -> List[dict]:
    """Daily snapshot rows: window W for date d covers ``[d + 1 day - W, d + 1 day)``."""
    keys, grouped = _by_key(group_by, events)
    rows = []
    for key, evs in grouped.items():
        for d in sorted({_day(x) for x in dates}):
            end = ((d - _EPOCH).days + 1) * _DAY

            def in_window(window, evs=evs, end=end):
                ms = _window_ms(window)
                return [e for e in evs if _event_time(e) is not None and _event_time(e) < end
                        and (ms is None or _event_time(e) >= end - ms)]

            feats = _features(group_by, in_window)
            if any(v is not None for v in feats.values()):
                rows.append({**dict(zip(keys, key)), "ds": d, **feats})
    return rows


def _tail_hop(ms: int) -> int:
    if ms >= 12 * _DAY:
        return _DAY
    if ms >= 12 * _HOUR:
        return _HOUR
    return 5 * 60_000


def temporal(group_by: ttypes.GroupBy, events: Sequence[dict], queries: Sequence[dict]) -> List[dict]:
    """One row per query: window W at query time q covers ``[floor((q - W) / hop) * hop, q)``."""
    keys, grouped = _by_key(group_by, events)
    rows = []
    for q in queries:
        key = tuple(q.get(c) for c in keys)
        evs = grouped.get(key, []) if q.get("ts") is not None else []
        qts = q.get("ts")

        def in_window(window, evs=evs, qts=qts):
            ms = _window_ms(window)
            start = None if ms is None else ((qts - ms) // _tail_hop(ms)) * _tail_hop(ms)
            return [e for e in evs if e.get("ts") is not None and e["ts"] < qts
                    and (start is None or e["ts"] >= start)]

        rows.append({**dict(zip(keys, key)), "ts": qts, **_features(group_by, in_window)})
    return rows
