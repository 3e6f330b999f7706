"""Random event tables for engine-vs-reference tests (seeded, so failures reproduce)."""
import math
import random
from datetime import date, datetime, timedelta, timezone
from typing import Dict, List

import pyarrow as pa

MS_PER_DAY = 86_400_000
CATEGORIES = ["books", "games", "food", "toys"]

EVENT_SCHEMA = pa.schema([
    ("user_id", pa.string()),
    ("merchant", pa.string()),
    ("price", pa.float64()),
    ("qty", pa.int64()),
    ("category", pa.string()),
    ("tags", pa.list_(pa.string())),
    ("attrs", pa.map_(pa.string(), pa.float64())),
    ("ts", pa.int64()),
    ("ds", pa.date32()),
])


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def random_events(seed: int, first: date, last: date, users: int = 6, per_day: int = 12,
                  empty_days: int = 2) -> List[Dict]:
    """Events over ``[first, last]`` with nulls, NaN, lists, maps, empty days and exact day boundaries."""
    rng = random.Random(seed)
    all_days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    skipped = set(rng.sample(all_days[1:-1], k=min(empty_days, max(len(all_days) - 2, 0))))
    rows = []
    for day in all_days:
        if day in skipped:
            continue
        start = day_start_ms(day)
        for n in range(rng.randint(per_day // 2, per_day)):
            offset = rng.choice([0, MS_PER_DAY - 1, rng.randrange(MS_PER_DAY)])  # boundaries on purpose
            user = None if rng.random() < 0.03 else f"u{rng.randrange(users)}"
            merchant = None if (user is not None and rng.random() < 0.05) else f"m{rng.randrange(2)}"
            price = rng.choice([None, math.nan, round(rng.uniform(-5, 100), 2)] + [round(rng.uniform(1, 50), 2)] * 5)
            rows.append({
                "user_id": user,
                "merchant": merchant,
                "price": price,
                "qty": None if rng.random() < 0.1 else rng.randint(-3, 20),
                "category": None if rng.random() < 0.1 else rng.choice(CATEGORIES),
                "tags": None if rng.random() < 0.1 else [rng.choice(CATEGORIES + [None]) for _ in range(rng.randint(0, 3))],
                "attrs": None if rng.random() < 0.1 else {c: round(rng.uniform(0, 10), 1)
                                                          for c in rng.sample(CATEGORIES, rng.randint(0, 2))},
                "ts": start + offset,
                "ds": day,
            })
    return rows


def to_table(rows: List[Dict]) -> pa.Table:
    converted = [dict(r, attrs=None if r["attrs"] is None else list(r["attrs"].items())) for r in rows]
    return pa.Table.from_pylist(converted, schema=EVENT_SCHEMA)
