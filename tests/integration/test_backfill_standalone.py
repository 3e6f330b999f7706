"""The backfill runs unchanged on a Spark standalone cluster (master + worker started on loopback).

The cluster is started for real with pyspark's own ``spark-class`` (Master and Worker daemons); the
job runs in a subprocess whose profile points ``spark.master`` at it, via ``SPARK_MASTER``. Its
output must equal the same backfill in local mode.
"""
import os
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pyspark
import pytest

from chronon_cli import settings as settings_module
from chronon_cli.storage import catalog
from tests.iceberg_tables import create_ds_table
from tests.parity.events import random_events, to_table

pytestmark = [pytest.mark.spark, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"

JOB = """
import sys
from datetime import date
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, Derivation, GroupBy, Operation
from ai.chronon.query import Query, select
from chronon_cli import settings
from chronon_cli.engines.spark.backfill import run_backfill
from chronon_cli.engines.spark.session import get_spark

s = settings.load(repo=sys.argv[1])
source = Source(events=EventSource(table="cluster.events", query=Query(
    selects=select("user_id", "merchant", "price", "category"), time_column="ts")))
gb = GroupBy(sources=[source], keys=["user_id"], name=sys.argv[2], output_namespace="cluster", aggregations=[
    Aggregation(input_column="price", operation=Operation.SUM, windows=["1d", "7d"]),
    Aggregation(input_column="price", operation=Operation.LAST_K(3), windows=["7d"]),
    Aggregation(input_column="category", operation=Operation.HISTOGRAM, windows=["7d"])])
gb.metaData.team = "cluster"
if sys.argv[3:] == ["derive"]:  # Spark SQL over the features; executors hand them over locally
    gb.derivations = [Derivation(name="*", expression="*"),
                      Derivation(name="share_1d", expression="try_divide(price_sum_1d, price_sum_7d)")]
result = run_backfill(s, gb, date(2024, 1, 5), date(2024, 1, 12))
print("MASTER", get_spark(s).sparkContext.master)
print("WRITTEN", result["partitions_written"])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("spark_cluster")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_WORKER_DIR=str(logs / "work"))
    with open(logs / "master.log", "w") as master_log, open(logs / "worker.log", "w") as worker_log:
        master = subprocess.Popen([str(SPARK_CLASS), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                   "--port", str(port), "--webui-port", str(ui)],
                                  env=env, stdout=master_log, stderr=subprocess.STDOUT)
        worker = None
        try:
            wait_for_port(port)
            url = f"spark://127.0.0.1:{port}"
            worker = subprocess.Popen([str(SPARK_CLASS), "org.apache.spark.deploy.worker.Worker", "--host",
                                       "127.0.0.1", "--cores", "2", "--memory", "2g", "--webui-port", str(worker_ui),
                                       url], env=env, stdout=worker_log, stderr=subprocess.STDOUT)
            wait_for_port(worker_ui)
            yield url
        finally:
            for proc in (worker, master):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)


def run_job(repo: Path, name: str, master: str, *extra: str) -> str:
    env = dict(os.environ, CHRONON_HOME=str(repo), SPARK_MASTER=master, SPARK_LOCAL_IP="127.0.0.1",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", JOB, str(repo), name, *extra], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def test_backfill_on_standalone_cluster_equals_local(cluster, tmp_path):
    s = settings_module.load(repo=str(tmp_path), env={"CHRONON_HOME": str(tmp_path)})
    events = random_events(seed=11, first=date(2024, 1, 1), last=date(2024, 1, 12))
    create_ds_table(catalog(s), "cluster.events", to_table(events))

    on_cluster = run_job(tmp_path, "on_cluster", cluster)
    assert f"MASTER {cluster}" in on_cluster
    local = run_job(tmp_path, "on_local", "local[2]")
    assert "MASTER local[2]" in local

    def rows(name):
        out = catalog(s).load_table(f"cluster.{name}").scan().to_arrow().to_pylist()
        return sorted(repr(sorted((k.replace(name, "X"), v) for k, v in r.items())) for r in out)

    assert rows("on_cluster") == rows("on_local")
    assert len(rows("on_cluster")) > 0



def test_derivations_on_standalone_cluster_equal_local(cluster, tmp_path):
    s = settings_module.load(repo=str(tmp_path), env={"CHRONON_HOME": str(tmp_path)})
    events = random_events(seed=12, first=date(2024, 1, 1), last=date(2024, 1, 12))
    create_ds_table(catalog(s), "cluster.events", to_table(events))

    assert f"MASTER {cluster}" in run_job(tmp_path, "derived_cluster", cluster, "derive")
    assert "MASTER local[2]" in run_job(tmp_path, "derived_local", "local[2]", "derive")

    def rows(name):
        out = catalog(s).load_table(f"cluster.{name}").scan().to_arrow().to_pylist()
        return sorted(repr(sorted((k.replace(name, "X"), v) for k, v in r.items())) for r in out)

    assert rows("derived_cluster") == rows("derived_local")
    got = catalog(s).load_table("cluster.derived_cluster").scan().to_arrow()
    assert "derived_cluster_share_1d" in got.column_names and "derived_cluster_price_last3_7d" in got.column_names
    assert any(v is not None for v in got.column("derived_cluster_share_1d").to_pylist())
