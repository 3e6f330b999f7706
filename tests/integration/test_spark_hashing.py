"""engines.spark.hashing against Spark itself: ``hash(...)`` and ``repartition(n, ...)`` partitions
of random keys (strings of every length up to 20, non-ASCII, empty, nulls; ints, longs, shorts,
booleans, dates; several columns) computed by Spark local mode and by the numpy code."""
import datetime as dt
import random

import pyarrow as pa
import pytest

from chronon_cli.engines.spark.hashing import _long_strings, spark_hash, spark_partition

pytestmark = pytest.mark.spark


def random_rows(seed: int, n: int = 3000, longest: int = 20):
    rng = random.Random(seed)
    alphabet = "abcxyz019_-éß日本😀"
    rows = []
    for _ in range(n):
        text = None if rng.random() < 0.05 else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))
        rows.append({
            "s": text,
            "i": None if rng.random() < 0.05 else rng.randint(-2**31, 2**31 - 1),
            "l": None if rng.random() < 0.05 else rng.randint(-2**63, 2**63 - 1),
            "h": rng.randint(-2**15, 2**15 - 1),
            "b": rng.random() < 0.5,
            "d": dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 40000)),
        })
    return rows


SCHEMA = pa.schema([("s", pa.string()), ("i", pa.int32()), ("l", pa.int64()), ("h", pa.int16()),
                    ("b", pa.bool_()), ("d", pa.date32())])


@pytest.mark.parametrize("columns,longest", [(["s"], 20), (["s"], 90), (["i"], 20), (["l"], 20), (["h"], 20),
                                             (["b"], 20), (["d"], 20), (["s", "i"], 20), (["s", "i"], 90),
                                             (["l", "s", "d"], 20)])
def test_hash_and_partitions_match_spark(spark, columns, longest):
    """Strings up to 20 characters are hashed row by row, up to 90 (mean UTF-8 length above
    LONG_STRING_BYTES) once per distinct value."""
    rows = random_rows(seed=len(columns) * 31 + len(columns[0]) + longest, longest=longest)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    assert _long_strings(table.column("s").combine_chunks()) == (longest > 20)   # both ways are covered
    frame = spark.createDataFrame(rows, "s string, i int, l long, h short, b boolean, d date")
    cols = ", ".join(columns)
    want = [r[0] for r in frame.selectExpr(f"hash({cols})").collect()]
    assert spark_hash(table, columns).tolist() == want
    for n in (2, 7, 8):
        frame_parts = frame.selectExpr(f"pmod(hash({cols}), {n})").collect()
        assert spark_partition(table, columns, n).tolist() == [r[0] for r in frame_parts]


def test_partitions_match_where_repartition_puts_rows(spark):
    rows = random_rows(seed=5, n=500)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    frame = spark.createDataFrame(rows, "s string, i int, l long, h short, b boolean, d date")
    placed = frame.repartition(4, "s", "i").selectExpr("s", "i", "spark_partition_id() AS p").collect()
    expected = spark_partition(table, ["s", "i"], 4).tolist()
    by_row = {(r["s"], r["i"]): p for r, p in zip(rows, expected)}
    assert all(by_row[(r["s"], r["i"])] == r["p"] for r in placed)


def test_string_layouts_hash_alike():
    """large_string columns and slices (a non-zero array offset) hash as the plain column does."""
    rows = random_rows(seed=9, n=800)
    table = pa.Table.from_pylist(rows, schema=SCHEMA).select(["s"])
    want = spark_hash(table, ["s"]).tolist()
    large = table.cast(pa.schema([("s", pa.large_string())]))
    assert spark_hash(large, ["s"]).tolist() == want
    sliced = pa.table({"s": table.column("s").combine_chunks().slice(100, 300)})
    assert spark_hash(sliced, ["s"]).tolist() == want[100:400]
    # the seed chains through a second column: a sliced string column after an int key
    two = pa.table({"i": pa.array([r["i"] for r in rows[100:400]], pa.int32()), "s": sliced.column("s")})
    frame_rows = [{"i": r["i"], "s": r["s"]} for r in rows[100:400]]
    assert spark_hash(two, ["i", "s"]).tolist() == spark_hash(pa.Table.from_pylist(frame_rows, schema=two.schema),
                                                              ["i", "s"]).tolist()
