"""GroupBy DSL as in Chronon's ``ai.chronon.group_by``: plain functions building ``ttypes`` objects."""
import json
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ai.chronon.utils import stamp_origin
from chronon_cli.spec import ttypes
from chronon_cli.suggest import did_you_mean

TimeUnit = ttypes.TimeUnit
Accuracy = ttypes.Accuracy
Window = ttypes.Window
Derivation = ttypes.Derivation

DEFAULT_APPROX_PERCENTILE_K = 128
DEFAULT_BOUNDED_UNIQUE_COUNT_K = 8


def _collector(op: int):
    def with_k(k: int) -> Tuple[int, Dict[str, str]]:
        return op, {"k": str(k)}

    return with_k


class _OperationMeta(type):
    def __getattr__(cls, name: str):
        names = [n for n in dir(cls) if n.isupper()]
        raise AttributeError(f"Operation has no member '{name}'{did_you_mean(name, names)}")


class Operation(metaclass=_OperationMeta):
    """Aggregation operations. Parameterised ones are called: ``LAST_K(10)``, ``TOP_K(5)``."""

    MIN = ttypes.Operation.MIN
    MAX = ttypes.Operation.MAX
    FIRST = ttypes.Operation.FIRST
    LAST = ttypes.Operation.LAST
    UNIQUE_COUNT = ttypes.Operation.UNIQUE_COUNT
    APPROX_UNIQUE_COUNT = ttypes.Operation.APPROX_UNIQUE_COUNT
    # lgK of the CPC sketch (default 8)
    APPROX_UNIQUE_COUNT_LGK = staticmethod(_collector(ttypes.Operation.APPROX_UNIQUE_COUNT))
    COUNT = ttypes.Operation.COUNT
    SUM = ttypes.Operation.SUM
    AVERAGE = ttypes.Operation.AVERAGE
    VARIANCE = ttypes.Operation.VARIANCE
    SKEW = ttypes.Operation.SKEW
    KURTOSIS = ttypes.Operation.KURTOSIS
    HISTOGRAM = ttypes.Operation.HISTOGRAM
    # k keeps the top-k most frequent entries, 0 keeps all
    HISTOGRAM_K = staticmethod(_collector(ttypes.Operation.HISTOGRAM))
    APPROX_HISTOGRAM_K = staticmethod(_collector(ttypes.Operation.APPROX_HISTOGRAM_K))
    FIRST_K = staticmethod(_collector(ttypes.Operation.FIRST_K))
    LAST_K = staticmethod(_collector(ttypes.Operation.LAST_K))
    TOP_K = staticmethod(_collector(ttypes.Operation.TOP_K))
    BOTTOM_K = staticmethod(_collector(ttypes.Operation.BOTTOM_K))
    BOUNDED_UNIQUE_COUNT = ttypes.Operation.BOUNDED_UNIQUE_COUNT
    BOUNDED_UNIQUE_COUNT_K = staticmethod(_collector(ttypes.Operation.BOUNDED_UNIQUE_COUNT))

    @staticmethod
    def APPROX_PERCENTILE(
        percentiles: Sequence[float] = (0.5,), k: int = DEFAULT_APPROX_PERCENTILE_K
    ) -> Tuple[int, Dict[str, str]]:
        return ttypes.Operation.APPROX_PERCENTILE, {
            "percentiles": json.dumps([float(p) for p in percentiles]),
            "k": str(k),
        }


_WINDOW_RE = re.compile(r"^\s*(\d+)\s*([dh])\s*$", re.IGNORECASE)


def parse_window(window: Union[str, ttypes.Window]) -> ttypes.Window:
    """``"7d"`` / ``"12h"`` / ``Window(7, TimeUnit.DAYS)`` -> ``Window``."""
    if isinstance(window, ttypes.Window):
        return window
    if isinstance(window, str):
        match = _WINDOW_RE.match(window)
        if match:
            unit = TimeUnit.DAYS if match.group(2).lower() == "d" else TimeUnit.HOURS
            return ttypes.Window(length=int(match.group(1)), timeUnit=unit)
    raise ValueError(
        f"invalid window {window!r}: use Window(length, TimeUnit.DAYS|HOURS) or a string like '7d' or '12h'"
    )


def Aggregation(
    input_column: Optional[str] = None,
    operation: Any = None,
    windows: Optional[Sequence[Union[str, ttypes.Window]]] = None,
    buckets: Optional[List[str]] = None,
    tags: Optional[Dict[str, str]] = None,
) -> ttypes.Aggregation:
    """One aggregation of ``input_column``; ``operation`` is an ``Operation`` member or a call of one."""
    arg_map: Optional[Dict[str, str]] = None
    if callable(operation):  # e.g. Operation.APPROX_PERCENTILE without arguments
        operation = operation()
    if isinstance(operation, tuple):
        operation, arg_map = operation
    return ttypes.Aggregation(
        inputColumn=input_column,
        operation=operation,
        argMap=dict(arg_map) if arg_map else None,
        windows=[parse_window(w) for w in windows] if windows else None,
        buckets=list(buckets) if buckets else None,
    )


def _as_source(source: Any) -> Any:
    if isinstance(source, ttypes.EventSource):
        return ttypes.Source(events=source)
    if isinstance(source, ttypes.EntitySource):
        return ttypes.Source(entities=source)
    return source


def _string_map(values: Optional[Dict[str, Any]]) -> Optional[Dict[str, str]]:
    return {str(k): str(v) for k, v in values.items()} if values else None


def GroupBy(
    sources: Any,
    keys: List[str],
    aggregations: Optional[List[ttypes.Aggregation]],
    online: Optional[bool] = None,
    production: Optional[bool] = None,
    backfill_start_date: Optional[str] = None,
    dependencies: Optional[List[str]] = None,
    env: Optional[Dict[str, Dict[str, str]]] = None,
    table_properties: Optional[Dict[str, str]] = None,
    output_namespace: Optional[str] = None,
    accuracy: Optional[int] = None,
    lag: int = 0,
    offline_schedule: str = "@daily",
    name: Optional[str] = None,
    tags: Optional[Dict[str, str]] = None,
    derivations: Optional[List[ttypes.Derivation]] = None,
    version: Optional[Union[int, str]] = None,
    team: Optional[str] = None,
    incremental_agg: Optional[bool] = None,
    is_incremental: Optional[bool] = None,
    tableProperties: Optional[Dict[str, str]] = None,
    **kwargs: Any,
) -> ttypes.GroupBy:
    """A GroupBy: ``keys`` and ``aggregations`` over ``sources`` (a Source or a list of them)."""
    if not isinstance(sources, (list, tuple)):
        sources = [sources]
    if tableProperties and table_properties:
        raise ValueError("GroupBy: give table_properties or tableProperties, not both")
    incremental = is_incremental if is_incremental is not None else incremental_agg
    custom = {k: v for k, v in kwargs.items()}
    if tags:
        custom["groupby_tags"] = tags
    if lag:
        custom["lag"] = lag
    metadata = ttypes.MetaData(
        name=name,
        online=online,
        production=production,
        dependencies=list(dependencies) if dependencies else None,
        tableProperties=_string_map(table_properties or tableProperties),
        outputNamespace=output_namespace,
        team=team,
        modeToEnvMap={m: _string_map(e) or {} for m, e in env.items()} if env else None,
        offlineSchedule=offline_schedule,
        customJson=json.dumps(custom, sort_keys=True) if custom else None,
        version=str(version) if version is not None else None,
    )
    return stamp_origin(ttypes.GroupBy(
        metaData=metadata,
        sources=[_as_source(s) for s in sources],
        keyColumns=list(keys) if keys is not None else None,
        aggregations=list(aggregations) if aggregations is not None else None,
        accuracy=accuracy,
        backfillStartDate=backfill_start_date,
        derivations=list(derivations) if derivations else None,
        isIncremental=incremental,
    ))
