"""writer.write_tables_from_tasks: several Iceberg tables written by the same Spark tasks, one
commit each, with per-task distinct-key counts. Spark local mode, pyiceberg on SQLite; tables are
read back with plain pyiceberg and the warehouse folders are listed from disk."""
import datetime as dt
import os
import re
import time

import pyarrow as pa
import pytest

from chronon_cli.engines.spark.writer import Target, write_tables_from_tasks
from chronon_cli.errors import JobError
from chronon_cli.storage import catalog
from chronon_cli.storage.iceberg import load_table, replace_partitions

pytestmark = pytest.mark.spark

D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
A_SCHEMA = pa.schema([("k", pa.string()), ("v", pa.int64()), ("ds", pa.date32())])
B_SCHEMA = pa.schema([("k", pa.string()), ("n", pa.int64()), ("ds", pa.date32())])


def input_rows(spark):
    keys = [f"k{i % 13}" for i in range(200)]
    return spark.createDataFrame([(k, i) for i, k in enumerate(keys)], "k string, i long").repartition(4, "k")


def both(fail_at=None, bad_day=None):
    def task(batches):
        for batch in batches:
            table = pa.Table.from_batches([batch])
            n = table.num_rows
            a = pa.table({"k": table["k"], "v": table["i"], "ds": pa.array([D1] * n, pa.date32())})
            yield 0, a.to_batches()[0]
            if fail_at is not None and pa.compute.max(table["i"]).as_py() >= fail_at:
                raise RuntimeError("task failed on purpose")
            day = bad_day or D2
            b = pa.table({"k": table["k"], "n": pa.array([1] * n, pa.int64()), "ds": pa.array([day] * n, pa.date32())})
            yield 1, b.to_batches()[0]
    return task


def targets():
    return [Target("wt.a", A_SCHEMA, D1, D1), Target("wt.b", B_SCHEMA, D2, D2, count_keys=("k",))]


def contents(settings, name):
    return sorted(tuple(r.values()) for r in load_table(catalog(settings), name).scan().to_arrow().to_pylist())


def files_on_disk(settings, name):
    location = load_table(catalog(settings), name).location().replace("file://", "")
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(location + "/data") for f in fs)


def test_two_tables_from_the_same_tasks(spark, local_settings):
    results = write_tables_from_tasks(input_rows(spark), both(), targets(), local_settings)
    assert [r.table for r in results] == ["wt.a", "wt.b"]
    assert [r.rows for r in results] == [200, 200]
    assert results[0].keys is None and results[1].keys == 13
    assert contents(local_settings, "wt.a") == sorted((f"k{i % 13}", i, D1) for i in range(200))
    assert len(contents(local_settings, "wt.b")) == 200


@pytest.mark.parametrize("failure", [dict(fail_at=150), dict(bad_day=D1)])
def test_a_failed_task_changes_neither_table_and_leaves_no_files(spark, local_settings, failure):
    cat = catalog(local_settings)
    replace_partitions(cat, "wt.a", pa.table({"k": ["old"], "v": [1], "ds": pa.array([D1], pa.date32())}), D1, D1)
    replace_partitions(cat, "wt.b", pa.table({"k": ["old"], "n": [1], "ds": pa.array([D2], pa.date32())}), D2, D2)
    before = {n: (contents(local_settings, n), files_on_disk(local_settings, n)) for n in ("wt.a", "wt.b")}
    with pytest.raises(JobError):
        write_tables_from_tasks(input_rows(spark), both(**failure), targets(), local_settings)
    for name, (rows, files) in before.items():
        assert contents(local_settings, name) == rows
        assert files_on_disk(local_settings, name) == files


def slot_tasks(fail_in=None, late_in=None, signal_dir=None):
    """Tasks with no input (``TaskSlots``): task p makes the rows of keys k{p}, k{p+4}, ...
    Task ``fail_in`` fails after its first batch. With ``late_in``, the two tasks meet through files
    in ``signal_dir``: ``fail_in`` fails only once ``late_in`` runs, and ``late_in`` writes its
    files 0.3 s after that failure (after the driver heard of it, before Spark's kill timeout)."""
    def wait_for(name):
        import os
        import time

        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(signal_dir, name)) and time.monotonic() < deadline:
            time.sleep(0.01)

    def task(batches):
        import os
        import time

        from pyspark import TaskContext

        assert not list(batches)
        p = TaskContext.get().partitionId()
        if p == late_in:
            open(os.path.join(signal_dir, "late task runs"), "w").close()
            wait_for("failed")
            time.sleep(0.3)
        ks = [f"k{i}" for i in range(p, 13, 4)]
        yield 0, pa.RecordBatch.from_pydict({"k": ks, "v": [int(k[1:]) for k in ks],
                                             "ds": pa.array([D1] * len(ks), pa.date32())})
        if p == fail_in:
            if late_in is not None:
                wait_for("late task runs")
                open(os.path.join(signal_dir, "failed"), "w").close()
            raise RuntimeError("slot task failed on purpose")
        yield 1, pa.RecordBatch.from_pydict({"k": ks, "n": [1] * len(ks), "ds": pa.array([D2] * len(ks), pa.date32())})
    return task


def test_task_slots_write_both_tables_without_input_rows(spark, local_settings):
    from chronon_cli.engines.spark.writer import TaskSlots

    results = write_tables_from_tasks(TaskSlots(spark, 4), slot_tasks(), targets(), local_settings)
    assert [r.rows for r in results] == [13, 13] and results[1].keys == 13
    assert contents(local_settings, "wt.a") == sorted((f"k{i}", i, D1) for i in range(13))
    assert contents(local_settings, "wt.b") == sorted((f"k{i}", 1, D2) for i in range(13))


def test_a_failed_slot_task_changes_neither_table(spark, local_settings, tmp_path):
    """Task 2 fails while task 3 (same wave on local[2]) still runs and writes its files after
    the failure: the write waits for task 3 to end before it deletes them, so none is left."""
    from chronon_cli.engines.spark.writer import TaskSlots

    cat = catalog(local_settings)
    replace_partitions(cat, "wt.a", pa.table({"k": ["old"], "v": [1], "ds": pa.array([D1], pa.date32())}), D1, D1)
    before = (contents(local_settings, "wt.a"), files_on_disk(local_settings, "wt.a"))
    with pytest.raises(JobError, match="slot task failed on purpose"):
        tasks = slot_tasks(fail_in=2, late_in=3, signal_dir=str(tmp_path))
        write_tables_from_tasks(TaskSlots(spark, 4), tasks, targets(), local_settings)
    time.sleep(1.5)  # what task 3 wrote, had the write not waited for it, is on disk by now
    assert (contents(local_settings, "wt.a"), files_on_disk(local_settings, "wt.a")) == before
    assert load_table(catalog(local_settings), "wt.b", required=False) is None


def test_a_failed_write_says_so_when_tasks_outlive_the_wait(spark, local_settings, tmp_path, monkeypatch):
    """Task 3 still runs when the (shortened) wait is over: the error says files may be left behind
    and where, and the tables stay unchanged."""
    from chronon_cli.engines.spark import writer
    from chronon_cli.engines.spark.writer import TaskSlots

    monkeypatch.setattr(writer, "TASK_WAIT_SECONDS", 0.05)
    with pytest.raises(JobError, match="slot task failed on purpose") as raised:
        tasks = slot_tasks(fail_in=2, late_in=3, signal_dir=str(tmp_path))
        write_tables_from_tasks(TaskSlots(spark, 4), tasks, targets(), local_settings)
    hint = raised.value.hint or ""
    assert "still running after 0.05 s" in hint and "nothing was committed" in hint
    assert "/wt.db/a/data/ds=*/" in hint and "/wt.db/b/data/ds=*/" in hint
    assert re.search(r"file://\S+/wt\.db/a/data/\d{8}T\d{6}-[0-9a-f]{8}/", hint)  # Spark's staging folder
    time.sleep(1.5)  # task 3 has ended by now
    assert load_table(catalog(local_settings), "wt.b", required=False) is None
