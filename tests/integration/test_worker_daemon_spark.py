"""Spark's Python workers run under engines.spark.worker_daemon (local Spark session): the daemon
Spark starts is ours, the workers it forks carry the zipimporter patch and import pyspark from
site-packages rather than pyspark.zip, numpy in them asks for no transparent huge pages, and they keep memory they free."""
import os
import sys

import pytest

pytestmark = pytest.mark.spark


def test_spark_python_workers_run_under_the_daemon(spark):
    def probe(_):
        import zipimport as z
        import importlib
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            parent = f.read().split(b"\0")
        importlib.invalidate_caches()  # what PySpark's worker does before each task
        zips = [i for i in sys.path_importer_cache.values() if isinstance(i, z.zipimporter)]
        import pyspark
        from numpy._core.multiarray import _get_madvise_hugepage
        yield (parent[2].decode(), z.zipimporter.invalidate_caches.__name__, len(zips), pyspark.__file__,
               _get_madvise_hugepage())

    (daemon, patched_by, zips, pyspark_file, huge_pages), = spark.sparkContext.parallelize([0], 1).mapPartitions(probe).collect()
    assert daemon == "chronon_cli.engines.spark.worker_daemon"
    assert patched_by == "invalidate_if_changed"
    assert zips > 0  # pyspark.zip and the spark-core jar are on the workers' path
    assert ".zip" not in pyspark_file and pyspark_file.endswith("pyspark/__init__.py")  # imported with bytecode
    assert huge_pages is False


def test_spark_python_workers_keep_freed_memory(spark):
    def probe(_):
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096
        block = bytearray(256 << 20)  # zero-filled: every page touched
        held = rss()
        del block
        yield (held - rss()) >> 20

    returned_mib, = spark.sparkContext.parallelize([0], 1).mapPartitions(probe).collect()
    assert returned_mib < 32  # glibc's default unmaps a freed block this big at once (256 MiB back)
