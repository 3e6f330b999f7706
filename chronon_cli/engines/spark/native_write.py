"""The fast write path for a local warehouse: Spark's own parquet writer writes the data files.

Used by ``writer.write_table`` when the table lives in a local folder and its schema is flat. The
DataFrame is cast to the table's schema with each column's Iceberg field id in its
``parquet.field.id`` metadata (Spark writes it into the parquet schema), and written with
``partitionBy`` on a *copy* of ds so that every file keeps its ``ds`` column (Iceberg's
requirement; see FIELD-NOTES). The driver then checks the partition values against the range,
moves the files to ``<table>/data/ds=<day>/<write id>-<name>`` and reads each footer for the column
statistics of the manifest entry. Nothing is committed here: ``PartitionWrite.commit`` does that.
"""
import datetime as dt
import os
import shutil
from typing import Any, Dict, List

from chronon_cli.errors import JobError
from chronon_cli.storage.iceberg import DS, WrittenFile

PART = "_chronon_ds"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
SPARK_CODECS = {"zstd": "zstd", "snappy": "snappy", "gzip": "gzip", "lz4": "lz4", "brotli": "brotli",
                "uncompressed": "uncompressed", "none": "uncompressed"}


def write_native(df: Any, write: Any, plan: Dict[str, Any]) -> List[WrittenFile]:
    from pyiceberg.io.pyarrow import (compute_statistics_plan, data_file_statistics_from_parquet_metadata,
                                      parquet_path_to_id_mapping, schema_to_pyarrow)
    from pyiceberg.table import TableProperties
    from pyspark.sql import functions as F

    from chronon_cli.engines.spark.datasources import _spark_schema

    base = write.location[len("file://"):]
    staging = f"{base}/data/{plan['write_id']}"
    target = _spark_schema(schema_to_pyarrow(write.schema, include_field_ids=False), ds_as_date=False)
    present = set(df.columns)
    columns = []
    for field, ice in zip(target.fields, write.schema.fields):
        col = F.col(f"`{field.name}`") if field.name in present else F.lit(None)
        columns.append(col.cast(field.dataType).alias(field.name, metadata={"parquet.field.id": ice.field_id}))
    # a DATE partition column: cheaper per row than a string; Spark names the folders yyyy-MM-dd
    columns.append(F.col(f"`{DS}`").alias(PART))
    props = write.properties
    codec = str(props.get(TableProperties.PARQUET_COMPRESSION, TableProperties.PARQUET_COMPRESSION_DEFAULT)).lower()
    writer = df.select(*columns).write.partitionBy(PART).option("compression", SPARK_CODECS.get(codec, codec))
    if codec == "zstd":
        # pyarrow's (and so the Python path's) default level; parquet-mr would use 3, which is slower
        level = props.get(TableProperties.PARQUET_COMPRESSION_LEVEL) or "1"
        writer = writer.option("parquet.compression.codec.zstd.level", str(level))
    if props.get(TableProperties.PARQUET_ROW_GROUP_SIZE_BYTES):
        writer = writer.option("parquet.block.size", props[TableProperties.PARQUET_ROW_GROUP_SIZE_BYTES])
    writer.mode("errorifexists").parquet(f"file://{staging}")

    found = []
    for folder, _, names in os.walk(staging):
        for name in names:
            if name.startswith(("_", ".")) or not name.endswith(".parquet"):
                continue
            part = os.path.basename(folder)
            value = part.split("=", 1)[1] if part.startswith(PART + "=") else None
            if value is None or value == NULL_PARTITION:
                raise JobError(f"writing {write.name}: rows with a null ds")
            day = dt.date.fromisoformat(value)
            if not (write.start <= day <= write.end):
                raise JobError(f"writing {write.name}: ds {day} is outside the range being written "
                               f"[{write.start}, {write.end}]")
            found.append((day, os.path.join(folder, name)))

    import pyarrow.parquet as pq

    stats_plan = compute_statistics_plan(write.schema, props)
    mapping = parquet_path_to_id_mapping(write.schema)
    files = []
    for day, path in sorted(found):
        dest_dir = f"{base}/data/{DS}={day.isoformat()}"
        os.makedirs(dest_dir, exist_ok=True)
        dest = f"{dest_dir}/{plan['write_id']}-{os.path.basename(path)}"
        os.replace(path, dest)
        meta = pq.read_metadata(dest)
        stats = data_file_statistics_from_parquet_metadata(parquet_metadata=meta, stats_columns=stats_plan,
                                                           parquet_column_mapping=mapping)
        files.append(WrittenFile(path=f"file://{dest}", ds=day, size=os.path.getsize(dest),
                                 stats=stats.to_serialized_dict()))
    shutil.rmtree(staging, ignore_errors=True)
    return files
