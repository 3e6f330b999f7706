"""The Spark session: one per process, configured from the profile's ``spark`` section.

``spark.master`` and ``spark.conf`` come from the profile; these defaults apply unless the profile
sets them: UTC session time zone, no UI, no console progress, TIMESTAMP_MICROS parquet output,
Python data source filter pushdown, a Spark warehouse folder under $CHRONON_HOME, Python
workers started by ``worker_daemon`` (no per-task re-read of the zip archives on their path; numpy
without transparent huge pages; freed memory kept for the next arrays). The environment
gets ``SPARK_LOCAL_IP=127.0.0.1`` (local masters) and ``PYSPARK_PYTHON`` = this interpreter, so
Python workers see the same virtualenv. The chronon data sources are registered on every call
(once per configuration).
"""
import os
import sys
import threading
from typing import Any, Dict

_LOCK = threading.Lock()
_SPARK = None

DEFAULT_CONF: Dict[str, str] = {
    "spark.app.name": "chronon-cli",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.python.filterPushdown.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # partitioned writes keep up to 64 open files per task instead of sorting each task's rows by ds
    "spark.sql.maxConcurrentOutputFileWriters": "64",
    # read_table's native path matches parquet columns by Iceberg field id
    "spark.sql.parquet.fieldId.read.enabled": "true",
    # no _SUCCESS markers in the folders Spark writes data files into
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    # Python workers skip re-reading pyspark.zip and the spark-core jar before each task (~150 ms)
    # and start with memory settings that cut their system time (see worker_daemon)
    "spark.python.daemon.module": "chronon_cli.engines.spark.worker_daemon",
}


LOG4J2 = """# written by chronon-cli: Spark logs errors only (set spark.log_level in the profile for more)
rootLogger.level = {level}
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
logger.py4j.name = py4j
logger.py4j.level = error
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = {level}
logger.submit.name = org.apache.spark.deploy.SparkSubmit
logger.submit.level = {level}
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = {level}
logger.context.name = org.apache.spark.SparkContext
logger.context.level = {level}
"""


def _log_config(settings: Any) -> str:
    level = str((settings.spark or {}).get("log_level") or "ERROR").lower()
    path = os.path.join(str(settings.home), f"log4j2-{level}.properties")
    if not os.path.exists(path):
        os.makedirs(str(settings.home), exist_ok=True)
        with open(path, "w") as f:
            f.write(LOG4J2.format(level=level))
    return path


def spark_conf(settings: Any) -> Dict[str, str]:
    """The effective Spark configuration for ``settings`` (defaults overlaid by the profile)."""
    conf = dict(DEFAULT_CONF)
    conf["spark.sql.warehouse.dir"] = os.path.join(str(settings.home), "spark-warehouse")
    conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{_log_config(settings)}"
    for key, value in ((settings.spark or {}).get("conf") or {}).items():
        conf[str(key)] = str(value)
    return conf


def _alive(spark: Any) -> bool:
    try:
        return spark is not None and not spark.sparkContext._jsc.sc().isStopped()
    except Exception:
        return False


def get_spark(settings: Any):
    """The process's SparkSession (created on first use), with the chronon data sources registered."""
    global _SPARK
    with _LOCK:
        if not _alive(_SPARK):
            _SPARK = _create(settings)
    from chronon_cli.engines.spark.datasources import register_sources

    register_sources(_SPARK, settings)
    return _SPARK


def _create(settings: Any):
    master = str((settings.spark or {}).get("master") or "local[*]")
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.makedirs(str(settings.home), exist_ok=True)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(str((settings.spark or {}).get("log_level") or "ERROR"))
    import logging

    # pyspark logs every SQL error with its JVM stack on stderr; ours become JobErrors instead.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).disabled = True
    return spark


def stop_spark() -> None:
    """Stop the process's session (tests and long-lived callers)."""
    global _SPARK
    with _LOCK:
        if _SPARK is not None:
            _SPARK.stop()
        _SPARK = None
