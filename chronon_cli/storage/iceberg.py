"""Iceberg through pyiceberg: the catalog, ds partitions and atomic partition replacement.

Tables written here are partitioned by ``identity(ds)``; ``ds`` is a DATE column (a string ``ds``
in a table made elsewhere is read too). A write replaces a ds range in ONE catalog commit holding
one OVERWRITE snapshot: the files of those partitions are removed, the new files added, and any
property/schema changes ride along in the same transaction. A write that fails before the commit
leaves the table exactly as it was.
"""
import datetime as dt
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from chronon_cli.errors import ConfigError, JobError

DS = "ds"
EPOCH = dt.date(1970, 1, 1)
# Spark-only or reserved keys that are not Iceberg table properties.
SKIPPED_PROPERTIES = {"provider", "location", "owner", "external"}
# comma-separated columns parquet dictionary-encodes (default: all); values that rarely repeat
# (doubles, lists) cost encode time for nothing
DICTIONARY_COLUMNS = "chronon.parquet.dictionary-columns"
_CATALOGS: Dict[tuple, Any] = {}
_LOCK = threading.Lock()


# -- catalog -----------------------------------------------------------------------------------------

def catalog_properties(settings: Any) -> Dict[str, str]:
    """The pyiceberg properties of the profile's catalog (contains credentials: keep private)."""
    conf = {k: str(v) for k, v in (settings.catalog or {}).items() if v is not None}
    conf.pop("name", None)
    kind = conf.get("type", "sql")
    if kind not in ("sql", "rest"):
        raise ConfigError(f"unknown catalog type '{kind}' (known: sql, rest)", file=str(settings.path),
                          field="catalog.type")
    if kind == "sql":
        conf.setdefault("uri", f"sqlite:///{settings.home}/catalog.db")
        conf.setdefault("warehouse", f"file://{settings.home}/warehouse")
    elif "uri" not in conf:
        raise ConfigError("a rest catalog needs a uri", file=str(settings.path), field="catalog.uri")
    return conf


def catalog_name(settings: Any) -> str:
    return str((settings.catalog or {}).get("name") or "chronon")


def _prepare_local_dirs(conf: Dict[str, str]) -> None:
    uri = conf.get("uri", "")
    if uri.startswith("sqlite:///"):
        db = uri[len("sqlite:///"):]
        if db and db != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(db)), exist_ok=True)
    warehouse = conf.get("warehouse", "")
    if warehouse.startswith("file://"):
        os.makedirs(warehouse[len("file://"):], exist_ok=True)
    elif warehouse and "://" not in warehouse:
        os.makedirs(warehouse, exist_ok=True)


def load_catalog_from(name: str, conf: Dict[str, str]):
    """A pyiceberg catalog for ``conf`` (cached per process; also used inside Spark workers)."""
    key = (name,) + tuple(sorted(conf.items()))
    with _LOCK:
        cat = _CATALOGS.get(key)
        if cat is None:
            try:
                if conf.get("type", "sql") == "sql":
                    _prepare_local_dirs(conf)
                    from pyiceberg.catalog.sql import SqlCatalog
                    cat = SqlCatalog(name, **conf)
                else:
                    from pyiceberg.catalog.rest import RestCatalog
                    cat = RestCatalog(name, **conf)
            except ImportError as exc:
                raise ConfigError(f"the {conf.get('type')} catalog needs an extra: {exc}",
                                  hint="pip install 'pyiceberg[sql-sqlite,pyarrow]'") from None
            except ConfigError:
                raise
            except Exception as exc:
                raise JobError(f"cannot open the Iceberg catalog '{name}' ({conf.get('type')}): {exc}") from None
            _CATALOGS[key] = cat
    return cat


def load_catalog(settings: Any):
    return load_catalog_from(catalog_name(settings), catalog_properties(settings))


def split_name(name: str) -> Tuple[str, str]:
    """``ns.table`` -> ``("ns", "table")``; anything else is a ConfigError."""
    parts = name.split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"table name '{name}' must be namespace.table")
    return parts[0], parts[1]


def ensure_namespace(cat: Any, namespace: str) -> None:
    from pyiceberg.exceptions import NamespaceAlreadyExistsError

    if (namespace,) not in {tuple(n) for n in cat.list_namespaces()}:
        try:
            cat.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            pass


def load_table(cat: Any, name: str, required: bool = True):
    """The table, or None (or a JobError when ``required``) if it does not exist."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    split_name(name)
    try:
        return cat.load_table(name)
    except (NoSuchTableError, NoSuchNamespaceError):
        if required:
            raise JobError(f"table {name} does not exist",
                           hint="run the staging query or backfill that produces it first") from None
        return None


def table_exists(cat: Any, name: str) -> bool:
    return load_table(cat, name, required=False) is not None


def clean_properties(properties: Optional[Dict[str, Any]]) -> Dict[str, str]:
    return {str(k): str(v) for k, v in (properties or {}).items() if str(k) not in SKIPPED_PROPERTIES}


def iceberg_schema(arrow_schema: Any):
    """A pyiceberg Schema with fresh field ids for a pyarrow schema."""
    from pyiceberg.io.pyarrow import _ConvertToIcebergWithoutIDs, visit_pyarrow
    from pyiceberg.schema import assign_fresh_schema_ids

    return assign_fresh_schema_ids(visit_pyarrow(arrow_schema, _ConvertToIcebergWithoutIDs()))


def _new_table_args(name: str, arrow_schema: Any, properties: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform

    if DS not in arrow_schema.names:
        raise JobError(f"cannot create {name}: the data has no '{DS}' column")
    schema = iceberg_schema(arrow_schema)
    ds_id = schema.find_field(DS).field_id
    spec = PartitionSpec(PartitionField(source_id=ds_id, field_id=1000, transform=IdentityTransform(), name=DS))
    return {"schema": schema, "partition_spec": spec, "properties": clean_properties(properties)}


def create_table(cat: Any, name: str, arrow_schema: Any, properties: Optional[Dict[str, Any]] = None):
    """Create ``name`` partitioned by identity(ds) with ``properties``; the namespace too if needed."""
    from pyiceberg.exceptions import TableAlreadyExistsError

    namespace, _ = split_name(name)
    args = _new_table_args(name, arrow_schema, properties)
    ensure_namespace(cat, namespace)
    try:
        return cat.create_table(name, **args)
    except TableAlreadyExistsError:
        return cat.load_table(name)


# -- partitions --------------------------------------------------------------------------------------

def to_date(value: Any) -> dt.date:
    """A ds value (date, datetime, days since epoch, or 'YYYY-MM-DD') as a date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int):
        return EPOCH + dt.timedelta(days=value)
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    raise ValueError(f"not a ds value: {value!r}")


def ds_partition_field(table: Any, spec_id: Optional[int] = None):
    """The identity(ds) partition field of ``table``'s (current or given) spec, or None."""
    from pyiceberg.transforms import IdentityTransform

    spec = table.specs()[spec_id] if spec_id is not None else table.spec()
    try:
        ds_id = table.schema().find_field(DS).field_id
    except ValueError:
        return None
    for pos, field in enumerate(spec.fields):
        if field.source_id == ds_id and isinstance(field.transform, IdentityTransform):
            return pos, field
    return None


def _ds_filter(start: Optional[dt.date], end: Optional[dt.date]):
    """ds in [start, end]; ISO strings bind to DATE and to string ds columns alike."""
    from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThanOrEqual

    expr = AlwaysTrue()
    if start is not None:
        expr = And(expr, GreaterThanOrEqual(DS, start.isoformat()))
    if end is not None:
        expr = And(expr, LessThanOrEqual(DS, end.isoformat()))
    return expr


def ds_is_string(table: Any) -> bool:
    from pyiceberg.types import StringType

    return isinstance(table.schema().find_field(DS).field_type, StringType)


def scan_files(table: Any, start: Optional[dt.date] = None, end: Optional[dt.date] = None,
               snapshot_id: Optional[int] = None) -> List[Any]:
    """The FileScanTasks of ``table`` whose ds may fall in [start, end] (pruned by partition/metrics)."""
    try:
        table.schema().find_field(DS)
        row_filter = _ds_filter(start, end)
    except ValueError:
        from pyiceberg.expressions import AlwaysTrue
        row_filter = AlwaysTrue()
    kwargs = {"row_filter": row_filter}
    if snapshot_id is not None:
        kwargs["snapshot_id"] = snapshot_id
    return list(table.scan(**kwargs).plan_files())


def partitions(table: Any, snapshot_id: Optional[int] = None, start: Optional[dt.date] = None,
               end: Optional[dt.date] = None) -> Set[dt.date]:
    """The ds values present in ``table`` (read from partition metadata, else from the ds column),
    only those in [start, end] when given: then only the manifests and files of that range are
    read, so the cost does not grow with the table's history."""
    if table.current_snapshot() is None and snapshot_id is None:
        return set()
    try:
        table.schema().find_field(DS)
    except ValueError:
        raise JobError(f"table {'.'.join(table.name())} has no '{DS}' column") from None

    def wanted(day: dt.date) -> bool:
        return (start is None or day >= start) and (end is None or day <= end)

    found: Set[dt.date] = set()
    slow = False
    for task in scan_files(table, start, end, snapshot_id=snapshot_id):
        hit = ds_partition_field(table, task.file.spec_id)
        if hit is None:
            slow = True
            break
        if task.file.record_count:
            value = task.file.partition[hit[0]]
            if value is not None:
                found.add(to_date(value))
    if not slow:
        return {d for d in found if wanted(d)}
    kwargs = {"selected_fields": (DS,), "row_filter": _ds_filter(start, end)}
    if snapshot_id is not None:
        kwargs["snapshot_id"] = snapshot_id
    column = table.scan(**kwargs).to_arrow().column(DS)
    return {d for d in (to_date(v) for v in column.unique().to_pylist() if v is not None) if wanted(d)}


def ds_partition_record(table_schema: Any, spec: Any, ds_value: dt.date):
    """The partition Record of a data file holding ``ds_value`` only."""
    from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
    from pyiceberg.types import StringType

    ds_field = table_schema.find_field(DS)
    raw = ds_value.isoformat() if isinstance(ds_field.field_type, StringType) else ds_value
    fields = [f for f in spec.fields if f.source_id == ds_field.field_id]
    return PartitionKey(raw_partition_field_values=[PartitionFieldValue(fields[0], raw)],
                        partition_spec=spec, schema=table_schema).partition


# -- writes -------------------------------------------------------------------------------------------

@dataclass
class WrittenFile:
    """What a write task reports for one parquet file it wrote (picklable): Iceberg's statistics
    (``DataFileStatistics.to_serialized_dict()``), or the file's parquet footer (a pyarrow
    ``FileMetaData``) for the driver to derive them from (``PartitionWrite.data_file``), so that
    write tasks need no pyiceberg."""

    path: str
    ds: dt.date
    size: int
    stats: Optional[Dict[str, Any]] = None
    footer: Any = None

    @property
    def record_count(self) -> int:
        return int(self.stats["record_count"]) if self.stats is not None else int(self.footer.num_rows)


class PartitionWrite:
    """A pending replacement of the ds partitions [start, end] of one table.

    ``open`` loads (or creates) the table and stages property and schema changes in a transaction;
    write tasks then use ``schema``/``location``/``properties``; ``commit`` adds the files and drops
    the old ones of the range in one OVERWRITE snapshot, in one catalog commit.
    """

    def __init__(self, cat: Any, name: str, arrow_schema: Any, start: dt.date, end: dt.date,
                 properties: Optional[Dict[str, Any]] = None):
        if end < start:
            raise ConfigError(f"end date {end} is before start date {start}")
        self.name, self.start, self.end = name, start, end
        table = load_table(cat, name, required=False)
        self.created = table is None
        if table is None:
            # Created by the same commit that adds the data: a failed write leaves no table behind.
            ensure_namespace(cat, split_name(name)[0])
            self.txn = cat.create_table_transaction(name, **_new_table_args(name, arrow_schema, properties))
            table = self.txn._table
        else:
            self.txn = table.transaction()
        self.table = table
        if ds_partition_field(table) is None:
            raise JobError(f"table {name} is not partitioned by identity(ds); chronon-cli only replaces ds partitions")
        wanted = clean_properties(properties)
        wanted.pop("format-version", None)
        changed = {k: v for k, v in wanted.items() if table.properties.get(k) != v}
        if changed:
            self.txn.set_properties(changed)
        current = {f.name for f in table.schema().fields}
        if set(arrow_schema.names) - current:
            try:
                with self.txn.update_schema() as update:
                    update.union_by_name(arrow_schema)
            except Exception as exc:
                raise JobError(f"cannot evolve the schema of {name}: {exc}") from None
        self.schema = self.txn.table_metadata.schema()
        self.spec = self.txn.table_metadata.spec()
        self.location = self.txn.table_metadata.location.rstrip("/")
        self.properties = dict(self.txn.table_metadata.properties)
        self._stats_setup = None
        missing = [n for n in self.schema.column_names if n not in arrow_schema.names]
        self.missing_columns = missing  # written as nulls

    def statistics(self, written: WrittenFile) -> Dict[str, Any]:
        """Iceberg column statistics of a written file (from its footer when the task sent that)."""
        if written.stats is not None:
            return written.stats
        from pyiceberg.io.pyarrow import (compute_statistics_plan, data_file_statistics_from_parquet_metadata,
                                          parquet_path_to_id_mapping)

        if self._stats_setup is None:
            self._stats_setup = (compute_statistics_plan(self.schema, self.properties),
                                 parquet_path_to_id_mapping(self.schema))
        plan, mapping = self._stats_setup
        return data_file_statistics_from_parquet_metadata(
            parquet_metadata=written.footer, stats_columns=plan, parquet_column_mapping=mapping).to_serialized_dict()

    def data_file(self, written: WrittenFile):
        from pyiceberg.manifest import DataFile, DataFileContent, FileFormat

        return DataFile(
            content=DataFileContent.DATA, file_path=written.path, file_format=FileFormat.PARQUET,
            partition=ds_partition_record(self.schema, self.spec, written.ds),
            file_size_in_bytes=written.size, sort_order_id=None, spec_id=self.spec.spec_id,
            equality_ids=None, key_metadata=None, **self.statistics(written))

    def commit(self, files: Iterable[WrittenFile], snapshot_properties: Optional[Dict[str, str]] = None
               ) -> Optional[int]:
        """Replace the range with ``files`` in one commit; the new snapshot id (None if nothing changed)."""
        from pyiceberg.exceptions import CommitFailedException

        files = list(files)
        for f in files:
            if not (self.start <= f.ds <= self.end):
                raise JobError(f"internal: file for ds={f.ds} outside [{self.start}, {self.end}]")
        old = [] if self.created or not self.table.current_snapshot() else [
            t.file for t in scan_files(self.table, self.start, self.end)]
        old = [f for f in old if ds_partition_field(self.table, f.spec_id) is not None
               and self.start <= to_date(f.partition[ds_partition_field(self.table, f.spec_id)[0]]) <= self.end]
        staged = bool(self.txn._updates) and not self.created
        if not files and not old and not staged and not self.created:
            return None
        snapshot_id = None
        if files or old:
            props = dict(snapshot_properties or {})
            with self.txn.update_snapshot(snapshot_properties=props).overwrite() as overwrite:
                for f in old:
                    overwrite.delete_data_file(f)
                for f in files:
                    overwrite.append_data_file(self.data_file(f))
                snapshot_id = overwrite.snapshot_id
        try:
            table = self.txn.commit_transaction()
        except CommitFailedException as exc:
            raise JobError(f"commit to {self.name} failed (a concurrent writer?): {exc}",
                           hint="re-run: the table was not changed") from None
        self.table = table
        return snapshot_id if snapshot_id is not None else (
            table.current_snapshot().snapshot_id if table.current_snapshot() else None)


def replace_partitions(cat: Any, name: str, arrow_table: Any, start: dt.date, end: dt.date,
                       properties: Optional[Dict[str, Any]] = None) -> Optional[int]:
    """Replace ds in [start, end] of ``name`` with the rows of a (small) pyarrow table, in one commit.

    The driver-side counterpart of ``engines.spark.tables.write_table`` (which writes in Spark
    tasks); handy for tests and small data. Returns the new snapshot id.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from chronon_cli.storage.parquet_files import write_ds_files
    from chronon_cli.storage import warehouse_store_for_catalog

    if DS not in arrow_table.column_names:
        raise JobError(f"cannot write {name}: the data has no '{DS}' column")
    if arrow_table.schema.field(DS).type != pa.date32():
        arrow_table = arrow_table.set_column(arrow_table.schema.get_field_index(DS), DS,
                                             pc.cast(arrow_table.column(DS), pa.date32()))
    write = PartitionWrite(cat, name, arrow_table.schema, start, end, properties)
    store = warehouse_store_for_catalog(cat)
    from chronon_cli.storage.parquet_files import DsRangeError

    try:
        files = write_ds_files(store, write_plan(write, uuid.uuid4().hex[:12]), iter(arrow_table.to_batches()))
    except DsRangeError as exc:
        raise JobError(f"writing {name}: {str(exc).split(': ', 1)[-1]}") from None
    return write.commit(files)


def _dictionary_kwargs(table: str, props: Dict[str, Any], arrow_schema: Any) -> Dict[str, Any]:
    """``use_dictionary`` for the columns ``DICTIONARY_COLUMNS`` lists (all columns when unset)."""
    listed = props.get(DICTIONARY_COLUMNS)
    if listed is None:
        return {}
    columns = [c.strip() for c in str(listed).split(",") if c.strip()]
    unknown = [c for c in columns if c not in arrow_schema.names]
    if unknown:
        raise ConfigError(f"table {table}: property {DICTIONARY_COLUMNS} names {', '.join(unknown)}, not columns "
                          f"of the table (columns: {', '.join(arrow_schema.names)})", field=DICTIONARY_COLUMNS)
    return {"use_dictionary": columns}


def write_plan(write: PartitionWrite, write_id: str) -> Dict[str, Any]:
    """The picklable instructions write tasks need (no credentials in it): the table's Arrow schema
    with Iceberg field ids and the parquet writer settings its properties ask for, worked out here so
    that write tasks need no pyiceberg (importing it costs every fresh Python worker about 0.5 s)."""
    from pyiceberg.io.pyarrow import _get_parquet_writer_kwargs, schema_to_pyarrow
    from pyiceberg.table import TableProperties
    from pyiceberg.utils.properties import property_as_int

    props = write.properties
    arrow_schema = schema_to_pyarrow(write.schema, include_field_ids=True)
    return {
        "arrow_schema": arrow_schema,
        "writer_kwargs": {**_get_parquet_writer_kwargs(props), **_dictionary_kwargs(write.name, props, arrow_schema)},
        "row_group_rows": property_as_int(props, TableProperties.PARQUET_ROW_GROUP_LIMIT,
                                          TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT),
        "target_bytes": property_as_int(props, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
                                        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT),
        "location": write.location,
        "start": write.start.toordinal(),
        "end": write.end.toordinal(),
        "write_id": write_id,
        "table": write.name,
    }


def day_files(table: Any, days: Iterable[dt.date]) -> Optional[List[Any]]:
    """The non-empty data files (``DataFile``) of ``table`` whose ds partition is one of ``days``;
    None when a file of that range has row-level deletes or no identity(ds) partition value (a
    caller that wants plain files per day then falls back to reading rows)."""
    wanted = set(days)
    if not wanted or table.current_snapshot() is None:
        return []
    found = []
    for task in scan_files(table, min(wanted), max(wanted)):
        hit = ds_partition_field(table, task.file.spec_id)
        if hit is None or task.delete_files:
            return None
        if to_date(task.file.partition[hit[0]]) in wanted and task.file.record_count:
            found.append(task.file)
    return found


def files_by_value(table: Any, column: str, days: Iterable[dt.date]) -> Optional[Dict[int, List[str]]]:
    """The data files of ``table`` for the ds ``days``, grouped by the single value an integer
    ``column`` holds in each (from the files' lower/upper bounds), each group in day order (manifests
    list files in commit order, newest first; readers of daily IRs want the days ascending); None
    when the column is missing or some file holds several values or has no bounds (the caller then
    reads rows instead)."""
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import IntegerType

    try:
        field = table.schema().find_field(column)
    except ValueError:
        return None
    if not isinstance(field.field_type, IntegerType):
        return None
    files = day_files(table, days)
    if files is None:
        return None

    def day(f):
        return to_date(f.partition[ds_partition_field(table, f.spec_id)[0]])

    grouped: Dict[int, List[str]] = {}
    for f in sorted(files, key=lambda f: (day(f), f.file_path)):
        low = (f.lower_bounds or {}).get(field.field_id)
        high = (f.upper_bounds or {}).get(field.field_id)
        if low is None or low != high or (f.null_value_counts or {}).get(field.field_id):
            return None
        grouped.setdefault(from_bytes(IntegerType(), low), []).append(f.file_path)
    return grouped
