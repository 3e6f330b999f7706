"""Iceberg tables for Spark jobs: read, write (ds partitions), existence, and SQL name binding.

- ``read_table``: a DataFrame over an Iceberg table, read in tasks (ds as DATE).
- ``write_table``: replace ds partitions [start, end] in one commit (see ``writer``).
- ``bind_tables``: make ``ns.table`` (and ``ns.table.snapshots``/``history``/... metadata tables)
  resolvable in a Spark SQL statement, by registering catalog tables in Spark's session catalog.
"""
import datetime as dt
import json
import re
from typing import Any, Dict, Iterable, List, Optional, Set

from chronon_cli.engines.spark.writer import WriteResult, write_table  # noqa: F401  (re-exported)
from chronon_cli.errors import ConfigError, JobError

METADATA_TABLES = ("snapshots", "history", "files", "data_files", "manifests", "partitions", "refs",
                   "entries", "metadata_log_entries")
_ID = r"`?([A-Za-z_][A-Za-z0-9_]*)`?"
_REF = re.compile(rf"(?<![\w.`]){_ID}\s*\.\s*{_ID}(?:\s*\.\s*{_ID})?(?![\w`])")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|--[^\n]*|/\*.*?\*/", re.S)
_BOUND: Dict[tuple, str] = {}


def table_exists(settings: Any, name: str) -> bool:
    from chronon_cli.storage import catalog
    from chronon_cli.storage.iceberg import table_exists as exists

    return exists(catalog(settings), name)


def existing_partitions(settings: Any, name: str, start: Optional[dt.date] = None,
                        end: Optional[dt.date] = None) -> Set[dt.date]:
    """The ds partitions of ``name`` (in [start, end] when given; empty if the table does not exist)."""
    from chronon_cli.storage import catalog
    from chronon_cli.storage.iceberg import load_table, partitions

    table = load_table(catalog(settings), name, required=False)
    return partitions(table, start=start, end=end) if table is not None else set()


def spark_schema_of(table: Any, columns: Optional[Iterable[str]] = None):
    """The Spark schema a read of ``table`` returns (ds as DATE)."""
    import pyarrow as pa
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    from chronon_cli.engines.spark.datasources import _spark_schema

    arrow = schema_to_pyarrow(table.schema(), include_field_ids=False)
    if columns is not None:
        arrow = pa.schema([arrow.field(c) for c in columns])
    return _spark_schema(arrow, ds_as_date=True)


def read_table(spark: Any, settings: Any, table_name: str, start: Optional[dt.date] = None,
               end: Optional[dt.date] = None, columns: Optional[List[str]] = None,
               snapshot_id: Optional[int] = None):
    """A DataFrame over Iceberg table ``table_name``, rows with ds in [start, end] (either bound optional).

    Files are planned with pyiceberg on the driver (pruned by ds) and read by tasks: with Spark's
    own parquet reader (matching columns, nested struct fields too, by Iceberg field id) when the
    warehouse is local and ``spark.native_local_io`` on; else with pyarrow through the Iceberg data source
    (planned when the query runs). ``ds`` comes back as DATE whether stored as a date or a string.
    """
    from chronon_cli.engines.spark.datasources import register_sources
    from chronon_cli.storage import catalog
    from chronon_cli.storage.iceberg import load_table

    table = load_table(catalog(settings), table_name)
    if columns is not None:
        known = set(table.schema().column_names)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ConfigError(f"table {table_name} has no column(s) {', '.join(unknown)}; "
                              f"columns: {', '.join(table.schema().column_names)}")
    if _native_read_ok(settings, table):
        return _read_native(spark, table, start, end, columns, snapshot_id)
    options = {"table": table_name}
    if start is not None:
        options["start"] = start.isoformat()
    if end is not None:
        options["end"] = end.isoformat()
    if columns is not None:
        options["columns"] = json.dumps(list(columns))
    if snapshot_id is not None:
        options["snapshot_id"] = str(snapshot_id)
    names = register_sources(spark, settings)
    return spark.read.format(names.iceberg).schema(spark_schema_of(table, columns)).options(**options).load()


def _native_read_ok(settings: Any, table: Any) -> bool:
    if not (settings.spark or {}).get("native_local_io", True):
        return False
    if not table.location().startswith("file://"):
        return False
    if "schema.name-mapping.default" in table.properties:  # files without field ids (add_files)
        return False
    return True


def _with_field_ids(data_type: Any, ice_type: Any) -> Any:
    """``data_type`` with Iceberg field ids on every nested struct field (Spark matches parquet
    columns by id at each struct level; list elements and map entries are matched by position)."""
    from pyiceberg import types as it
    from pyspark.sql.types import ArrayType, MapType, StructField, StructType

    if isinstance(data_type, StructType) and isinstance(ice_type, it.StructType):
        return StructType([StructField(f.name, _with_field_ids(f.dataType, ice.field_type), True,
                                       {"parquet.field.id": ice.field_id})
                           for f, ice in zip(data_type.fields, ice_type.fields)])
    if isinstance(data_type, ArrayType) and isinstance(ice_type, it.ListType):
        return ArrayType(_with_field_ids(data_type.elementType, ice_type.element_type), True)
    if isinstance(data_type, MapType) and isinstance(ice_type, it.MapType):
        return MapType(_with_field_ids(data_type.keyType, ice_type.key_type),
                       _with_field_ids(data_type.valueType, ice_type.value_type), True)
    return data_type


def _read_native(spark: Any, table: Any, start: Optional[dt.date], end: Optional[dt.date],
                 columns: Optional[List[str]], snapshot_id: Optional[int]):
    """Spark's parquet reader over the planned data files, columns matched by Iceberg field id."""
    from pyiceberg.io.pyarrow import schema_to_pyarrow
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField, StructType

    from chronon_cli.engines.spark.datasources import _spark_schema
    from chronon_cli.storage.iceberg import DS, scan_files

    iceberg = table.schema() if snapshot_id is None else table.schemas()[table.snapshot_by_id(snapshot_id).schema_id]
    file_schema = _spark_schema(schema_to_pyarrow(iceberg, include_field_ids=False), ds_as_date=False)
    read_schema = StructType([StructField(f.name, _with_field_ids(f.dataType, ice.field_type), True,
                                          {"parquet.field.id": ice.field_id})
                              for f, ice in zip(file_schema.fields, iceberg.fields)])
    tasks = scan_files(table, start, end, snapshot_id) if (table.current_snapshot() or snapshot_id) else []
    for task in tasks:
        if task.delete_files:
            raise JobError(f"table {'.'.join(table.name())} has row-level delete files; chronon-cli reads "
                           "copy-on-write tables only")
    if tasks:
        df = spark.read.schema(read_schema).parquet(*[t.file.file_path for t in tasks])
    else:
        df = spark.createDataFrame([], read_schema)
    if DS in df.columns:
        df = df.withColumn(DS, F.to_date(F.col(DS)))
        if start is not None:
            df = df.where(F.col(DS) >= F.lit(start))
        if end is not None:
            df = df.where(F.col(DS) <= F.lit(end))
    return df.select(*[F.col(f"`{c}`") for c in (columns if columns is not None else df.columns)])


def _masked(sql: str) -> str:
    """``sql`` with string literals and comments blanked (same length), so names inside them are ignored."""
    return _STRING.sub(lambda m: " " * len(m.group(0)), sql)


def bind_tables(spark: Any, settings: Any, sql: str) -> str:
    """Make the catalog tables ``sql`` mentions resolvable in Spark; returns the SQL to run.

    ``ns.t`` becomes a table of Spark's session catalog whose provider is the Iceberg data source
    (planned at query time, so it always reads the current snapshot). ``ns.t.snapshots`` and the
    other metadata tables become temporary views of pyiceberg's metadata (the SQL is rewritten).
    """
    from chronon_cli.storage import catalog

    masked = _masked(sql)
    refs = list(_REF.finditer(masked))
    if not refs:
        return sql
    cat = catalog(settings)
    namespaces = {n[0] for n in cat.list_namespaces() if len(n) == 1}
    tables_by_ns: Dict[str, Set[str]] = {}
    replacements = []
    for m in refs:
        ns, name, meta = m.group(1), m.group(2), m.group(3)
        if ns not in namespaces:
            continue
        if ns not in tables_by_ns:
            tables_by_ns[ns] = {ident[-1] for ident in cat.list_tables(ns)}
        if name not in tables_by_ns[ns]:
            continue
        full = f"{ns}.{name}"
        if meta and meta.lower() in METADATA_TABLES:
            view = metadata_view(spark, settings, full, meta.lower())
            replacements.append((m.start(), m.end(), view))
        else:
            register_table(spark, settings, full)
    for begin, stop, view in reversed(replacements):
        sql = sql[:begin] + view + sql[stop:]
    return sql


def register_table(spark: Any, settings: Any, name: str) -> None:
    """Register Iceberg table ``name`` in Spark's session catalog (re-registered when its schema changes)."""
    from chronon_cli.engines.spark.datasources import table_source
    from chronon_cli.engines.spark.sqlerrors import run_sql
    from chronon_cli.storage import catalog
    from chronon_cli.storage.iceberg import load_table, split_name

    ns, t = split_name(name)
    table = load_table(catalog(settings), name)
    source = table_source(spark, settings, name)
    key = (id(spark), name)
    schema = spark_schema_of(table)
    stamp = f"{source}:{schema.json()}"
    if _BOUND.get(key) == stamp and spark.catalog.tableExists(f"`{ns}`.`{t}`"):
        return
    columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields)
    run_sql(spark, f"CREATE DATABASE IF NOT EXISTS `{ns}`")
    run_sql(spark, f"DROP TABLE IF EXISTS `{ns}`.`{t}`")
    run_sql(spark, f"CREATE TABLE `{ns}`.`{t}` ({columns}) USING {source}")
    _BOUND[key] = stamp


def metadata_table(settings: Any, name: str, kind: str):
    """pyiceberg's metadata table ``kind`` (snapshots, history, files, ...) of ``name``, as pyarrow."""
    from chronon_cli.storage import catalog
    from chronon_cli.storage.iceberg import load_table

    table = load_table(catalog(settings), name)
    if kind not in METADATA_TABLES:
        raise ConfigError(f"unknown metadata table {kind} (known: {', '.join(METADATA_TABLES)})")
    return getattr(table.inspect, kind)()


def _nullable(schema: Any) -> Any:
    """``schema`` with every field, at every depth, nullable (Spark's Arrow conversion wants that)."""
    import pyarrow as pa

    def typ(t):
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, typ(f.type), True) for f in t])
        if pa.types.is_large_list(t):
            return pa.list_(pa.field("element", typ(t.value_type), True))
        if pa.types.is_list(t):
            return pa.list_(pa.field(t.value_field.name, typ(t.value_type), True))
        if pa.types.is_map(t):
            return pa.map_(t.key_type, pa.field("value", typ(t.item_type), True))
        if pa.types.is_large_string(t):
            return pa.string()
        if pa.types.is_large_binary(t):
            return pa.binary()
        return t

    return pa.schema([pa.field(f.name, typ(f.type), True) for f in schema])


def metadata_view(spark: Any, settings: Any, name: str, kind: str) -> str:
    """A temporary view of metadata table ``kind`` of ``name``; its name."""
    arrow = metadata_table(settings, name, kind)
    view = f"__iceberg_{name.replace('.', '__')}__{kind}"
    try:
        df = spark.createDataFrame(arrow.cast(_nullable(arrow.schema)))
    except Exception as exc:
        raise JobError(f"cannot load {name}.{kind}: {exc}") from None
    df.createOrReplaceTempView(view)
    return view
