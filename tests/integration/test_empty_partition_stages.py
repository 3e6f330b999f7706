"""What the derivations' one-job write relies on (aggregate.joined_with_derived): in one Spark task,
a mapInArrow stage after another runs even when the first one produced no rows, so a bucket's new
IRs handed over locally are written although the bucket has no feature rows."""
import pyarrow as pa
import pytest

pytestmark = pytest.mark.spark


def test_a_later_arrow_stage_runs_for_a_partition_the_earlier_left_empty(spark):
    def first(batches):
        from pyspark import TaskContext

        for _ in batches:
            pass
        if TaskContext.get().partitionId() == 1:
            yield pa.RecordBatch.from_pydict({"x": pa.array([1, 2], pa.int64())})

    def second(batches):
        from pyspark import TaskContext

        rows = sum(b.num_rows for b in batches)
        yield pa.RecordBatch.from_pydict({"p": [TaskContext.get().partitionId()], "n": [rows]})

    frame = spark.range(0, 3, 1, 3).mapInArrow(first, "x long").selectExpr("x * 2 AS y") \
        .mapInArrow(second, "p long, n long")
    assert sorted(tuple(r) for r in frame.collect()) == [(0, 0), (1, 2), (2, 0)]
