"""engines.spark.aggregate.joined_with_derived outside Spark: the write stage takes the IRs and
features its task's first stage handed over, writes them with the derived columns, and fails when
the rows do not line up. The task context and the handoff folder are stand-ins (no Spark task
runs here); tests/parity/test_backfill_derivations.py runs the same code in Spark."""
import datetime as dt

import pyarrow as pa
import pytest

from chronon_cli.engines.spark import aggregate

DAY = dt.date(2024, 5, 1)


class FakeContext:
    def partitionId(self):
        return 3


@pytest.fixture
def handoff(tmp_path, monkeypatch):
    import pyspark

    monkeypatch.setattr(pyspark.TaskContext, "get", staticmethod(lambda: FakeContext()))
    monkeypatch.setattr(aggregate, "_handoff_path", lambda token, what: str(tmp_path / f"{token}-{what}.arrow"))
    return tmp_path


def features(users):
    return pa.table({"user_id": users, "qty_sum_7d": [float(i) for i in range(len(users))],
                     "qty_last3_7d": [[i, i] for i in range(len(users))], "ds": [DAY] * len(users)})


def derived(users, values):
    return pa.table({"user_id": users, "twice": values, "ds": [DAY] * len(users)})


OUT = pa.schema([("user_id", pa.string()), ("g_qty_last3_7d", pa.list_(pa.int64())), ("g_twice", pa.float64()),
                 ("ds", pa.date32())])


def run(token, side):
    task = aggregate.joined_with_derived(token, ["user_id"], ["qty_last3_7d"], ["twice"], OUT, 1)
    return list(task(iter(side.to_batches())))


def test_irs_and_features_come_back_with_the_derived_columns(handoff):
    irs = pa.table({"user_id": ["a"], "ds": [DAY]})
    aggregate._leave(aggregate._handoff_path("t", "irs"), irs.schema, irs.to_batches())
    base = features(["a", "b"])
    aggregate._leave(aggregate._handoff_path("t", "features"), base.schema, base.to_batches())
    out = run("t", derived(["a", "b"], [0.0, 2.0]))
    assert [i for i, _ in out] == [0, 1]
    assert out[0][1].to_pylist() == irs.to_pylist()
    assert out[1][1].schema == OUT
    assert out[1][1].to_pylist() == [{"user_id": "a", "g_qty_last3_7d": [0, 0], "g_twice": 0.0, "ds": DAY},
                                     {"user_id": "b", "g_qty_last3_7d": [1, 1], "g_twice": 2.0, "ds": DAY}]
    assert list(handoff.iterdir()) == []  # taken files are removed


def test_rows_out_of_line_fail_the_task(handoff):
    base = features(["a", "b"])
    aggregate._leave(aggregate._handoff_path("t", "features"), base.schema, base.to_batches())
    with pytest.raises(RuntimeError, match="bucket 3: the derived rows .* do not line up"):
        run("t", derived(["b", "a"], [0.0, 2.0]))


def test_derived_rows_without_handed_over_features_fail_the_task(handoff):
    with pytest.raises(RuntimeError, match="no features were handed over"):
        run("t", derived(["a"], [1.0]))


def test_an_empty_bucket_writes_nothing(handoff):
    assert run("t", derived([], [])) == []
