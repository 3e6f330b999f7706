"""Python data sources (Spark 4) reading parquet objects and Iceberg tables inside Spark tasks.

Two source families, registered per session by ``register_sources``:

- ``chronon_parquet_<h>``: parquet files behind an ObjectStore URI (``s3a://B/K``, a prefix, a
  local path). Partitions are groups of row groups; tasks read them with pyarrow.
- ``chronon_iceberg_<h>``: an Iceberg table (option ``table``). pyiceberg plans the files on the
  driver (in Spark's planner worker) with the ds range from the options and any pushed ds filters;
  tasks read the data files with pyarrow. ``ds`` always comes back as DATE.

The store/catalog configuration (which may hold credentials) is baked into a class created per
configuration and pickled by value; it never appears in the data source options, so it is not
printed in query plans. ``<h>`` is a hash of that configuration.
"""
import datetime as dt
import hashlib
import json
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition

SPLIT_BYTES = 128 << 20


def _spark_schema(arrow_schema: Any, ds_as_date: bool = True):
    """The Spark StructType for an arrow schema (large types narrowed; ds as DATE)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    fields = []
    for f in arrow_schema:
        t = f.type
        if pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_large_binary(t):
            t = pa.binary()
        elif pa.types.is_large_list(t):
            t = pa.list_(t.value_type)
        if ds_as_date and f.name == "ds":
            t = pa.date32()
        fields.append(pa.field(f.name, t, nullable=True))
    return from_arrow_schema(pa.schema(fields))


def _arrow_for(spark_schema: Any):
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(spark_schema, timestamp_utc=True)


class _Partition(InputPartition):
    def __init__(self, uri: str, row_groups: Optional[List[int]] = None, ds_range: Optional[Tuple[int, int]] = None):
        super().__init__(uri)
        self.uri, self.row_groups, self.ds_range = uri, row_groups, ds_range


class _FilesReader(DataSourceReader):
    def __init__(self, store_spec: Dict[str, Any], uris: List[str], schema: Any, min_splits: int):
        self.store_spec, self.uris, self.schema, self.min_splits = store_spec, uris, schema, min_splits

    def partitions(self):
        from chronon_cli.storage import store_from_spec
        from chronon_cli.storage.parquet_files import row_group_splits

        store = store_from_spec(self.store_spec)
        files = [f for uri in self.uris for f in _list(store, uri)]
        per_file = max(1, -(-self.min_splits // max(1, len(files))))
        parts = []
        for f in files:
            for split in row_group_splits(store, f, SPLIT_BYTES, per_file):
                parts.append(_Partition(split["uri"], split["row_groups"]))
        return parts or [_Partition("", [])]

    def read(self, partition):
        from chronon_cli.storage import store_from_spec
        from chronon_cli.storage.parquet_files import read_file_batches

        if not partition.uri:
            return
        store = store_from_spec(self.store_spec)
        yield from read_file_batches(store, partition.uri, _arrow_for(self.schema), partition.row_groups)


def _list(store: Any, uri: str) -> List[str]:
    """Files under ``uri`` as URIs the store resolves (S3 keys keep their scheme)."""
    from chronon_cli.storage import split_s3_uri

    files = store.list_files(uri, suffix="")
    s3 = split_s3_uri(uri)
    if s3 is None:
        return files
    root = store.resolve(uri)[1]
    out = []
    for f in files:
        rel = f[len(root):].lstrip("/")
        out.append(uri.rstrip("/") + ("/" + rel if rel else ""))
    return out


class _ParquetSourceBase(DataSource):
    """``USING chronon_parquet_<h> OPTIONS (path 's3a://...')`` (or ``paths`` as a JSON list)."""

    STORE_SPEC: Dict[str, Any] = {}
    NAME = "chronon_parquet"

    @classmethod
    def name(cls) -> str:
        return cls.NAME

    def _uris(self) -> List[str]:
        if "paths" in self.options:
            return list(json.loads(self.options["paths"]))
        if "path" in self.options:
            return [self.options["path"]]
        raise ValueError("the parquet source needs a 'path' option")

    def schema(self):
        from chronon_cli.storage import store_from_spec
        from chronon_cli.storage.parquet_files import arrow_schema_of

        store = store_from_spec(self.STORE_SPEC)
        for uri in self._uris():
            files = _list(store, uri)
            if files:
                return _spark_schema(arrow_schema_of(store, files[0]), ds_as_date=False)
        raise FileNotFoundError(f"no parquet files at {', '.join(self._uris())}")

    def reader(self, schema):
        return _FilesReader(dict(self.STORE_SPEC), self._uris(), schema, int(self.options.get("min_splits", "1")))


class _IcebergReader(DataSourceReader):
    def __init__(self, source: "_IcebergSourceBase", schema: Any):
        self.catalog_name, self.catalog_conf = source.CATALOG_NAME, dict(source.CATALOG_CONF)
        self.store_spec = dict(source.STORE_SPEC)
        o = source.options
        self.table = o.get("table") or source.TABLE
        self.start = dt.date.fromisoformat(o["start"]) if o.get("start") else None
        self.end = dt.date.fromisoformat(o["end"]) if o.get("end") else None
        self.snapshot_id = int(o["snapshot_id"]) if o.get("snapshot_id") else None
        self.schema = schema

    def pushFilters(self, filters):
        """Take ds range filters (to prune partitions); Spark still evaluates every filter itself."""
        from pyspark.sql.datasource import EqualTo, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual

        for f in filters:
            attr = getattr(f, "attribute", None)
            value = getattr(f, "value", None)
            if attr == ("ds",) and isinstance(value, dt.date):
                value = value if not isinstance(value, dt.datetime) else value.date()
                lo = hi = None
                if isinstance(f, EqualTo):
                    lo = hi = value
                elif isinstance(f, GreaterThan):
                    lo = value + dt.timedelta(days=1)
                elif isinstance(f, GreaterThanOrEqual):
                    lo = value
                elif isinstance(f, LessThan):
                    hi = value - dt.timedelta(days=1)
                elif isinstance(f, LessThanOrEqual):
                    hi = value
                if lo is not None:
                    self.start = max(self.start, lo) if self.start else lo
                if hi is not None:
                    self.end = min(self.end, hi) if self.end else hi
            yield f  # not handled exclusively: Spark re-applies it

    def partitions(self):
        from chronon_cli.storage.iceberg import EPOCH, load_catalog_from, load_table, scan_files

        if self.start and self.end and self.end < self.start:
            return [_Partition("")]
        table = load_table(load_catalog_from(self.catalog_name, self.catalog_conf), self.table)
        if table.current_snapshot() is None and self.snapshot_id is None:
            return [_Partition("")]
        tasks = scan_files(table, self.start, self.end, self.snapshot_id)
        rng = None
        if self.start or self.end:
            rng = ((self.start - EPOCH).days if self.start else -(1 << 30),
                   (self.end - EPOCH).days if self.end else 1 << 30)
        parts = []
        for task in tasks:
            if task.delete_files:
                raise ValueError(f"table {self.table} has row-level delete files; chronon-cli reads "
                                 "copy-on-write tables only")
            f = task.file
            n_groups = len(f.split_offsets or [])
            if f.file_size_in_bytes > SPLIT_BYTES and n_groups > 1:
                per = max(1, n_groups * SPLIT_BYTES // f.file_size_in_bytes)
                for i in range(0, n_groups, per):
                    parts.append(_Partition(f.file_path, list(range(i, min(n_groups, i + per))), rng))
            else:
                parts.append(_Partition(f.file_path, None, rng))
        return parts or [_Partition("")]

    def read(self, partition):
        from chronon_cli.storage import store_from_spec
        from chronon_cli.storage.parquet_files import read_file_batches

        if not partition.uri:
            return
        store = store_from_spec(self.store_spec)
        yield from read_file_batches(store, partition.uri, _arrow_for(self.schema), partition.row_groups,
                                     partition.ds_range)


class _IcebergSourceBase(DataSource):
    """``USING chronon_iceberg_<h> OPTIONS (table 'ns.t' [, start, end, snapshot_id, columns])``."""

    CATALOG_NAME = "chronon"
    CATALOG_CONF: Dict[str, str] = {}
    STORE_SPEC: Dict[str, Any] = {}
    NAME = "chronon_iceberg"
    TABLE = ""  # set for the per-table sources behind Spark catalog tables (which get no options)

    @classmethod
    def name(cls) -> str:
        return cls.NAME

    def schema(self):
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        from chronon_cli.storage.iceberg import load_catalog_from, load_table

        table = load_table(load_catalog_from(self.CATALOG_NAME, self.CATALOG_CONF),
                           self.options.get("table") or self.TABLE)
        arrow = schema_to_pyarrow(table.schema(), include_field_ids=False)
        if self.options.get("columns"):
            wanted = json.loads(self.options["columns"])
            arrow = __import__("pyarrow").schema([arrow.field(c) for c in wanted])
        return _spark_schema(arrow, ds_as_date=True)

    def reader(self, schema):
        return _IcebergReader(self, schema)


class SourceNames(NamedTuple):
    parquet: str
    iceberg: str


_REGISTERED: Dict[Tuple[int, str], SourceNames] = {}
_TABLE_SOURCES: Dict[Tuple[int, str, str], str] = {}


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _make(base: type, name: str, attrs: Dict[str, Any]) -> type:
    cls = type(f"{base.__name__.lstrip('_')}_{name}", (base,), dict(attrs, NAME=name))
    cls.__qualname__ = cls.__name__  # not importable: cloudpickle pickles it (and its config) by value
    return cls


def register_sources(spark: Any, settings: Any) -> SourceNames:
    """Register (once per session and configuration) the sources for ``settings``; their names."""
    from chronon_cli.storage import object_store, warehouse_store
    from chronon_cli.storage.iceberg import catalog_name, catalog_properties

    store_spec = dict(object_store(settings).spec())
    cat_name, cat_conf = catalog_name(settings), catalog_properties(settings)
    wh_spec = dict(warehouse_store(settings).spec())
    key = (id(spark), _digest(store_spec, cat_name, cat_conf, wh_spec))
    names = _REGISTERED.get(key)
    if names is None:
        h = key[1]
        parquet = _make(_ParquetSourceBase, f"chronon_parquet_{h}", {"STORE_SPEC": store_spec})
        iceberg = _make(_IcebergSourceBase, f"chronon_iceberg_{h}",
                        {"CATALOG_NAME": cat_name, "CATALOG_CONF": cat_conf, "STORE_SPEC": wh_spec})
        spark.dataSource.register(parquet)
        spark.dataSource.register(iceberg)
        names = _REGISTERED[key] = SourceNames(parquet.NAME, iceberg.NAME)
    return names


def table_source(spark: Any, settings: Any, table_name: str) -> str:
    """A source bound to one Iceberg table (Spark passes no OPTIONS to catalog tables' sources)."""
    from chronon_cli.storage.iceberg import catalog_name, catalog_properties

    names = register_sources(spark, settings)
    h = names.iceberg.rsplit("_", 1)[1]
    key = (id(spark), h, table_name)
    name = _TABLE_SOURCES.get(key)
    if name is None:
        from chronon_cli.storage import warehouse_store

        name = f"chronon_iceberg_{h}_{table_name.replace('.', '__')}".lower()
        cls = _make(_IcebergSourceBase, name, {
            "CATALOG_NAME": catalog_name(settings), "CATALOG_CONF": catalog_properties(settings),
            "STORE_SPEC": dict(warehouse_store(settings).spec()), "TABLE": table_name})
        spark.dataSource.register(cls)
        _TABLE_SOURCES[key] = name
    return name
