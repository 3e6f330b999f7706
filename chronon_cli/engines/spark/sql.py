"""``--mode=sql``: Spark SQL against the profile's Iceberg catalog, results as a pyarrow Table.

Tables are addressed ``namespace.table``; Iceberg metadata tables as ``namespace.table.snapshots``
(also ``history``, ``files``, ``manifests``, ``partitions``, ``refs``, ``entries``,
``metadata_log_entries``). ``SHOW TABLES IN ns``, ``SHOW NAMESPACES`` and ``DESCRIBE [EXTENDED] ns.t``
are answered from the catalog itself. Everything else is Spark SQL.
"""
import re
from typing import Any, List, Optional

from chronon_cli.errors import JobError

_SHOW_TABLES = re.compile(r"^\s*SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+`?(?P<ns>\w+)`?)?(?:\s+(?:LIKE\s+)?"
                          r"'(?P<like>[^']*)')?\s*;?\s*$", re.I)
_SHOW_NS = re.compile(r"^\s*SHOW\s+(?:NAMESPACES|DATABASES|SCHEMAS)\s*;?\s*$", re.I)
_DESCRIBE = re.compile(r"^\s*(?:DESCRIBE|DESC)\s+(?:TABLE\s+)?(?P<ext>EXTENDED\s+|FORMATTED\s+)?"
                       r"`?(?P<ns>\w+)`?\.`?(?P<t>\w+)`?\s*;?\s*$", re.I)


def run_sql(settings: Any, statement: str, max_rows: Optional[int] = None):
    """Run one statement; its result as a pyarrow Table (at most ``max_rows`` rows if given)."""
    import pyarrow as pa

    statement = statement.strip().rstrip(";").strip()
    if not statement:
        raise JobError("empty SQL statement")
    special = _catalog_statement(settings, statement)
    if special is not None:
        return special
    from chronon_cli.engines.spark.session import get_spark
    from chronon_cli.engines.spark.sqlerrors import run_sql as spark_sql, sql_error, is_spark_error
    from chronon_cli.engines.spark.tables import bind_tables

    spark = get_spark(settings)
    bound = bind_tables(spark, settings, statement)
    df = spark_sql(spark, bound, "statement") if bound == statement else _run_rewritten(spark, statement, bound)
    if max_rows is not None:
        df = df.limit(max_rows)
    try:
        table = df.toArrow()
    except Exception as exc:
        if is_spark_error(exc):
            raise sql_error(exc, statement, "statement") from None
        raise
    return table if isinstance(table, pa.Table) else pa.table(table)


def _run_rewritten(spark: Any, original: str, bound: str):
    from chronon_cli.engines.spark.sqlerrors import is_spark_error, sql_error

    try:
        return spark.sql(bound)
    except Exception as exc:
        if is_spark_error(exc):
            raise sql_error(exc, original, "statement") from None
        raise


def _catalog_statement(settings: Any, statement: str):
    import pyarrow as pa

    from chronon_cli.storage import catalog

    m = _SHOW_NS.match(statement)
    if m:
        names = sorted(".".join(n) for n in catalog(settings).list_namespaces())
        return pa.table({"namespace": pa.array(names, pa.string())})
    m = _SHOW_TABLES.match(statement)
    if m:
        cat = catalog(settings)
        spaces = [m.group("ns")] if m.group("ns") else [".".join(n) for n in cat.list_namespaces()]
        rows: List[tuple] = []
        for ns in spaces:
            from pyiceberg.exceptions import NoSuchNamespaceError
            try:
                idents = cat.list_tables(ns)
            except NoSuchNamespaceError:
                raise JobError(f"namespace {ns} does not exist") from None
            for ident in idents:
                rows.append((ns, ident[-1]))
        if m.group("like"):
            pattern = re.compile("^" + re.escape(m.group("like")).replace(r"\*", ".*").replace("%", ".*") + "$", re.I)
            rows = [r for r in rows if pattern.match(r[1])]
        rows.sort()
        return pa.table({"namespace": pa.array([r[0] for r in rows], pa.string()),
                         "tableName": pa.array([r[1] for r in rows], pa.string()),
                         "isTemporary": pa.array([False] * len(rows), pa.bool_())})
    m = _DESCRIBE.match(statement)
    if m:
        return describe(settings, f"{m.group('ns')}.{m.group('t')}", extended=bool(m.group("ext")))
    return None


def describe(settings: Any, name: str, extended: bool = False):
    """``DESCRIBE [EXTENDED] ns.t`` from the Iceberg metadata: col_name, data_type, comment."""
    import pyarrow as pa

    from chronon_cli.engines.spark.tables import spark_schema_of
    from chronon_cli.storage import catalog
    from chronon_cli.storage.iceberg import load_table

    table = load_table(catalog(settings), name)
    rows = [(f.name, f.dataType.simpleString(), None) for f in spark_schema_of(table).fields]
    spec = table.spec()
    schema = table.schema()
    if spec.fields:
        rows.append(("# Partitioning", "", None))
        for i, field in enumerate(spec.fields):
            source = schema.find_field(field.source_id).name
            rows.append((f"Part {i}", source if str(field.transform) == "identity" else f"{field.transform}({source})",
                         None))
    if extended:
        snap = table.current_snapshot()
        rows += [("", "", None), ("# Detailed Table Information", "", None),
                 ("Name", name, None), ("Provider", "iceberg", None),
                 ("Location", table.location(), None),
                 ("Format version", str(table.metadata.format_version), None),
                 ("Current snapshot", str(snap.snapshot_id) if snap else "none", None),
                 ("Snapshots", str(len(table.snapshots())), None),
                 ("Table Properties", "[" + ", ".join(f"{k}={v}" for k, v in sorted(table.properties.items()))
                  + "]", None)]
    return pa.table({"col_name": pa.array([r[0] for r in rows], pa.string()),
                     "data_type": pa.array([r[1] for r in rows], pa.string()),
                     "comment": pa.array([r[2] for r in rows], pa.string())})
