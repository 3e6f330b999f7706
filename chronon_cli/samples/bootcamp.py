"""Deterministic bootcamp sample data: purchases and users parquet objects in the profile's S3.

- ``s3://chronon/warehouse/data/purchases/purchases.parquet``: 155 purchases from 2023-12-01 to
  2023-12-07 UTC (user_id string, purchase_price double, item_category string, ts int64 epoch ms).
- ``s3://chronon/warehouse/data/users/users.parquet``: 30 users (user_id string, email_verified
  bool, country string, account_created_ts int64 epoch ms), accounts created from 2023-11-01 to
  2023-12-06, so the daily user snapshots of ``users_from_s3`` grow over the week.

The same bytes every time (fixed seed, no wall clock): tests and docs can rely on the figures.
"""
import datetime as dt
import io
import random
from typing import Any, Dict, List

BASE_URI = "s3://chronon/warehouse/data"
PURCHASES_URI = f"{BASE_URI}/purchases/purchases.parquet"
USERS_URI = f"{BASE_URI}/users/users.parquet"
SEED = 20231201
FIRST_DAY = dt.date(2023, 12, 1)
DAYS = 7
PURCHASES_PER_DAY = (21, 18, 25, 20, 23, 26, 22)  # 155 in all
N_USERS = 30
CATEGORIES = ("electronics", "books", "clothing", "home", "groceries", "toys", "sports")
COUNTRIES = ("US", "CA", "GB", "DE", "FR", "BR", "IN", "JP")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _millis(moment: dt.datetime) -> int:
    return int((moment - _EPOCH).total_seconds() * 1000)


def users_rows() -> Dict[str, List[Any]]:
    rng = random.Random(SEED + 1)
    created_from = dt.datetime(2023, 11, 1, tzinfo=dt.timezone.utc)
    span_ms = _millis(dt.datetime(2023, 12, 7, tzinfo=dt.timezone.utc)) - _millis(created_from)
    rows: Dict[str, List[Any]] = {"user_id": [], "email_verified": [], "country": [], "account_created_ts": []}
    for i in range(1, N_USERS + 1):
        rows["user_id"].append(f"user_{i}")
        rows["email_verified"].append(rng.random() < 0.7)
        rows["country"].append(rng.choice(COUNTRIES))
        rows["account_created_ts"].append(_millis(created_from) + rng.randrange(span_ms))
    return rows


def purchases_rows() -> Dict[str, List[Any]]:
    rng = random.Random(SEED)
    users = users_rows()
    created = dict(zip(users["user_id"], users["account_created_ts"]))
    rows: Dict[str, List[Any]] = {"user_id": [], "purchase_price": [], "item_category": [], "ts": []}
    for d, count in enumerate(PURCHASES_PER_DAY[:DAYS]):
        day = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=d), dt.time(), dt.timezone.utc)
        for _ in range(count):
            ts = _millis(day) + rng.randrange(86_400_000)
            # a purchase comes from a user whose account already existed (users_from_s3 joins cleanly)
            eligible = [u for u, c in created.items() if c <= ts] or list(created)
            rows["user_id"].append(rng.choice(eligible))
            rows["purchase_price"].append(round(rng.uniform(2.0, 250.0), 2))
            rows["item_category"].append(rng.choice(CATEGORIES))
            rows["ts"].append(ts)
    order = sorted(range(len(rows["ts"])), key=rows["ts"].__getitem__)
    return {k: [v[i] for i in order] for k, v in rows.items()}


def purchases_table():
    import pyarrow as pa

    schema = pa.schema([("user_id", pa.string()), ("purchase_price", pa.float64()),
                        ("item_category", pa.string()), ("ts", pa.int64())])
    return pa.table(purchases_rows(), schema=schema)


def users_table():
    import pyarrow as pa

    schema = pa.schema([("user_id", pa.string()), ("email_verified", pa.bool_()),
                        ("country", pa.string()), ("account_created_ts", pa.int64())])
    return pa.table(users_rows(), schema=schema)


def _parquet_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    return buf.getvalue()


def write_sample_data(settings: Any) -> List[str]:
    """Write the bootcamp purchases and users parquet objects through the profile's ObjectStore; their URIs."""
    from chronon_cli.errors import JobError
    from chronon_cli.storage import object_store, split_s3_uri

    store = object_store(settings)
    written = []
    for uri, table in ((PURCHASES_URI, purchases_table()), (USERS_URI, users_table())):
        bucket = split_s3_uri(uri)[0]
        try:
            store.ensure_bucket(bucket)
            store.write_bytes(uri, _parquet_bytes(table))
        except OSError as exc:
            raise JobError(f"cannot write {uri}: {exc}") from None
        written.append(uri)
    return written
