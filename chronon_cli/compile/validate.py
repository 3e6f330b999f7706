"""Validation of compiled objects: Chronon's own rules plus ours. Every problem names its field.

Field paths use the config's Python keywords (``aggregations[1].input_column``) so users find them.
"""
import json
import re
from datetime import date
from typing import List, Optional, Tuple

from chronon_cli.spec import derived, ttypes
from chronon_cli.suggest import did_you_mean

Problem = Tuple[str, str, Optional[str]]  # (field, message, hint)

TIMED_OPS = {ttypes.Operation.FIRST, ttypes.Operation.LAST, ttypes.Operation.FIRST_K, ttypes.Operation.LAST_K}
K_OPS = {ttypes.Operation.FIRST_K, ttypes.Operation.LAST_K, ttypes.Operation.TOP_K, ttypes.Operation.BOTTOM_K,
         ttypes.Operation.APPROX_HISTOGRAM_K}
OPTIONAL_K_OPS = {ttypes.Operation.HISTOGRAM, ttypes.Operation.APPROX_UNIQUE_COUNT,
                  ttypes.Operation.BOUNDED_UNIQUE_COUNT, ttypes.Operation.APPROX_PERCENTILE}
KNOWN_MACROS = re.compile(r"^(start_date|end_date|latest_date|max_date\(\s*table\s*=\s*[\w.]+\s*\))$")
MACRO = re.compile(r"\{\{(.*?)\}\}")


def _is_date(value: Optional[str]) -> bool:
    try:
        date.fromisoformat(value)
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value))
    except (TypeError, ValueError):
        return False


def _positive_int(value: Optional[str]) -> bool:
    try:
        return int(value) > 0
    except (TypeError, ValueError):
        return False


def validate_query_macros(query: Optional[str], field: str) -> List[Problem]:
    problems = []
    for macro in MACRO.findall(query or ""):
        if not KNOWN_MACROS.match(macro.strip()):
            problems.append((field, f"unknown macro '{{{{{macro.strip()}}}}}'",
                             "known macros: {{ start_date }}, {{ end_date }}, {{ latest_date }}, "
                             "{{ max_date(table=namespace.table) }}"))
    return problems


def validate_staging_query(sq: ttypes.StagingQuery) -> List[Problem]:
    problems: List[Problem] = []
    if not (sq.query or "").strip():
        problems.append(("query", "a staging query needs a SQL query", None))
    problems += validate_query_macros(sq.query, "query")
    if sq.startPartition is not None and not _is_date(sq.startPartition):
        problems.append(("start_partition", f"'{sq.startPartition}' is not a YYYY-MM-DD date", None))
    for i, setup in enumerate(sq.setups or []):
        if not isinstance(setup, str) or not setup.strip():
            problems.append((f"setups[{i}]", "setups are SQL statements (non-empty strings)", None))
    return problems


def _validate_sources(gb: ttypes.GroupBy) -> Tuple[List[Problem], Optional[set]]:
    problems: List[Problem] = []
    if not gb.sources:
        return [("sources", "a GroupBy needs at least one source", None)], None
    select_sets = []
    for i, source in enumerate(gb.sources):
        where = f"sources[{i}]"
        if not isinstance(source, ttypes.Source) or (source.events is None) == (source.entities is None):
            problems.append((where, "a source sets exactly one of events= or entities=",
                             "wrap it: Source(events=EventSource(...))"))
            continue
        body = derived.source_body(source)
        if body.stagingQuery is None and not derived.source_table(source):
            field = "table" if source.events is not None else "snapshot_table"
            problems.append((f"{where}.{field}", "the source names no table", None))
        query = derived.source_query(source)
        if query.selects is not None:
            if "ts" in query.selects:
                problems.append((f"{where}.query.selects",
                                 "'ts' is a reserved column name and cannot be selected",
                                 "set the event time with Query(time_column=...) instead"))
            select_sets.append((i, set(query.selects)))
        if query.startPartition is not None and not _is_date(query.startPartition):
            problems.append((f"{where}.query.start_partition", f"'{query.startPartition}' is not a YYYY-MM-DD date", None))
    if select_sets and len({frozenset(s) for _, s in select_sets}) > 1:
        first_i, first = select_sets[0]
        for i, other in select_sets[1:]:
            if other != first:
                diff = sorted(first.symmetric_difference(other))
                problems.append((f"sources[{i}].query.selects",
                                 f"all sources must select the same columns; differs from sources[{first_i}] "
                                 f"in {', '.join(diff)}", None))
    selected = select_sets[0][1] if select_sets and len(select_sets) == len(gb.sources) else None
    return problems, selected


def _validate_aggregation(i: int, agg, selected: Optional[set], accuracy: int,
                          has_events: bool, temporal_without_time: bool) -> List[Problem]:
    where = f"aggregations[{i}]"
    problems: List[Problem] = []
    if not isinstance(agg, ttypes.Aggregation):
        return [(where, "expected an Aggregation(...)", None)]
    if agg.operation not in ttypes.Operation._VALUES_TO_NAMES:
        guess = did_you_mean(str(agg.operation).upper(), ttypes.Operation._NAMES_TO_VALUES)
        problems.append((f"{where}.operation", f"unknown operation {agg.operation!r}{guess}",
                         "use a member of Operation, e.g. Operation.SUM or Operation.LAST_K(10)"))
    if not agg.inputColumn:
        problems.append((f"{where}.input_column", "an aggregation needs an input column", None))
    elif selected is not None and agg.inputColumn not in selected:
        problems.append((f"{where}.input_column",
                         f"'{agg.inputColumn}' is not selected by the sources{did_you_mean(agg.inputColumn, selected)}",
                         f"selected columns: {', '.join(sorted(selected))}"))
    for j, bucket in enumerate(agg.buckets or []):
        if selected is not None and bucket not in selected:
            problems.append((f"{where}.buckets[{j}]",
                             f"bucket column '{bucket}' is not selected{did_you_mean(bucket, selected)}", None))
    args = agg.argMap or {}
    if agg.operation in K_OPS and not _positive_int(args.get("k")):
        problems.append((f"{where}.operation", f"{ttypes.Operation._VALUES_TO_NAMES[agg.operation]} needs a positive k",
                         None))
    elif agg.operation in OPTIONAL_K_OPS and "k" in args and not (
            _positive_int(args["k"]) or (agg.operation == ttypes.Operation.HISTOGRAM and args["k"] == "0")):
        problems.append((f"{where}.operation", f"k must be a positive integer, got {args['k']!r}", None))
    if agg.operation == ttypes.Operation.APPROX_PERCENTILE:
        problems += _validate_percentiles(where, args.get("percentiles"))
    windows = agg.windows or []
    for j, window in enumerate(windows):
        if not isinstance(window, ttypes.Window) or not isinstance(window.length, int) or window.length <= 0:
            problems.append((f"{where}.windows[{j}]", "a window has a positive integer length", None))
        elif window.timeUnit not in (ttypes.TimeUnit.HOURS, ttypes.TimeUnit.DAYS):
            problems.append((f"{where}.windows[{j}]", "window time unit must be TimeUnit.HOURS or TimeUnit.DAYS", None))
        elif window.timeUnit == ttypes.TimeUnit.HOURS and accuracy == ttypes.Accuracy.SNAPSHOT:
            problems.append((f"{where}.windows[{j}]",
                             f"hour window {window.length}h is not allowed with SNAPSHOT accuracy "
                             "(snapshots are computed at midnight)",
                             "use a day window or accuracy=Accuracy.TEMPORAL"))
    if has_events and temporal_without_time and (windows or agg.operation in TIMED_OPS):
        problems.append((f"{where}.windows" if windows else f"{where}.operation",
                         "windowed or timed aggregations on a TEMPORAL event source need the source's "
                         "query.time_column", "set Query(time_column='ts') or the expression giving epoch millis"))
    return problems


def _validate_percentiles(where: str, raw: Optional[str]) -> List[Problem]:
    try:
        values = json.loads(raw) if raw is not None else [0.5]
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        return [(f"{where}.operation", f"percentiles must be a list of numbers, got {raw!r}", None)]
    bad = [v for v in values if not 0.0 <= v <= 1.0]
    if bad or not values:
        return [(f"{where}.operation", f"percentiles must be within [0, 1], got {values}",
                 "e.g. Operation.APPROX_PERCENTILE([0.5, 0.95])")]
    return []


COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _validate_derivations(gb: ttypes.GroupBy) -> List[Problem]:
    """Derivations: ``*`` only as ``Derivation("*", "*")``; other names are new, distinct column names."""
    problems: List[Problem] = []
    seen = set()
    reserved = set(gb.keyColumns or []) | {"ds", "ts"}
    for i, d in enumerate(gb.derivations or []):
        where = f"derivations[{i}]"
        if not isinstance(d, ttypes.Derivation):
            problems.append((where, f"expected Derivation(name=..., expression=...), got {type(d).__name__}", None))
            continue
        for field in ("name", "expression"):
            value = getattr(d, field)
            if not isinstance(value, str) or not value.strip():
                problems.append((f"{where}.{field}", f"a derivation needs a non-empty {field}", None))
        if not isinstance(d.name, str) or not isinstance(d.expression, str) or not d.name.strip():
            continue
        if (d.name == derived.STAR) != (d.expression.strip() == derived.STAR):
            field = "expression" if d.name == derived.STAR else "name"
            problems.append((f"{where}.{field}", "'*' is only Derivation(name='*', expression='*'), which keeps "
                             "every base feature", "write Derivation(name='*', expression='*')"))
            continue
        if d.name == derived.STAR:
            if derived.STAR in seen:
                problems.append((f"{where}.name", "'*' is given twice", None))
            seen.add(derived.STAR)
            continue
        if not COLUMN_NAME.match(d.name):
            problems.append((f"{where}.name", f"'{d.name}' is not a column name (letters, digits and _, "
                             "not starting with a digit)", None))
        elif d.name in reserved:
            problems.append((f"{where}.name", f"'{d.name}' is a key or partition column of the output",
                             "pick another name"))
        elif d.name in seen:
            problems.append((f"{where}.name", f"'{d.name}' is derived twice", None))
        seen.add(d.name)
    return problems


def validate_group_by(gb: ttypes.GroupBy) -> List[Problem]:
    problems, selected = _validate_sources(gb)
    accuracy = derived.effective_accuracy(gb)
    if gb.accuracy not in (None, ttypes.Accuracy.TEMPORAL, ttypes.Accuracy.SNAPSHOT):
        problems.append(("accuracy", f"unknown accuracy {gb.accuracy!r}", "use Accuracy.SNAPSHOT or Accuracy.TEMPORAL"))
    sources = [s for s in gb.sources or [] if isinstance(s, ttypes.Source)]
    if gb.accuracy == ttypes.Accuracy.SNAPSHOT:
        for i, source in enumerate(sources):
            if derived.is_streaming(source):
                problems.append((f"sources[{i}]", "a SNAPSHOT GroupBy cannot have a streaming source (topic)",
                                 "drop accuracy=Accuracy.SNAPSHOT (streaming sources default to TEMPORAL)"))
    if not gb.keyColumns:
        problems.append(("keys", "a GroupBy needs at least one key column", None))
    elif selected is not None:
        for key in gb.keyColumns:
            if key not in selected:
                problems.append(("keys", f"key '{key}' is not selected by the sources{did_you_mean(key, selected)}",
                                 f"selected columns: {', '.join(sorted(selected))}"))
    has_events = any(s.events is not None for s in sources)
    if gb.aggregations is None:
        if has_events:
            problems.append(("aggregations", "aggregations=None is only allowed with entity sources",
                             "aggregate the events (e.g. Operation.LAST) or use an EntitySource"))
    else:
        temporal_without_time = accuracy == ttypes.Accuracy.TEMPORAL and any(
            s.events is not None and not derived.source_query(s).timeColumn for s in sources)
        for i, agg in enumerate(gb.aggregations):
            problems += _validate_aggregation(i, agg, selected, accuracy, has_events, temporal_without_time)
    if gb.backfillStartDate is not None and not _is_date(gb.backfillStartDate):
        problems.append(("backfill_start_date", f"'{gb.backfillStartDate}' is not a YYYY-MM-DD date", None))
    problems += _validate_derivations(gb)
    for i, source in enumerate(sources):
        body = derived.source_body(source)
        if body.stagingQuery is not None:
            problems += [(f"sources[{i}].staging_query.{f}", m, h) for f, m, h in validate_staging_query(body.stagingQuery)]
    return problems


def validate_join(join: ttypes.Join) -> List[Problem]:
    problems: List[Problem] = []
    if not isinstance(join.left, ttypes.Source) or (join.left.events is None) == (join.left.entities is None):
        problems.append(("left", "a Join needs a left Source with events= or entities=", None))
    if not join.joinParts:
        problems.append(("right_parts", "a Join needs at least one JoinPart", None))
    for i, part in enumerate(join.joinParts or []):
        if not isinstance(part, ttypes.JoinPart) or not isinstance(part.groupBy, ttypes.GroupBy):
            problems.append((f"right_parts[{i}]", "expected JoinPart(group_by=...)", None))
            continue
        problems += [(f"right_parts[{i}].group_by.{f}", m, h) for f, m, h in validate_group_by(part.groupBy)]
    return problems


def validate(obj) -> List[Problem]:
    if isinstance(obj, ttypes.GroupBy):
        return validate_group_by(obj)
    if isinstance(obj, ttypes.StagingQuery):
        return validate_staging_query(obj)
    if isinstance(obj, ttypes.Join):
        return validate_join(obj)
    return [("", f"cannot compile a {type(obj).__name__}", None)]
