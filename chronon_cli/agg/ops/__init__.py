"""Every operation of SEMANTICS §3, by ``ttypes.Operation`` number."""
from __future__ import annotations

from typing import Dict, Optional, Type

from chronon_cli.agg.ops.base import Op, ValueCodec
from chronon_cli.agg.ops.basic import Average, Count, Max, Min, Sum
from chronon_cli.agg.ops.collections import BottomK, BoundedUniqueCount, Histogram, TopK, UniqueCount
from chronon_cli.agg.ops.moments import Kurtosis, Skew, Variance
from chronon_cli.agg.ops.sketches import ApproxHistogramK, ApproxPercentile, ApproxUniqueCount
from chronon_cli.agg.ops.timed import First, FirstK, Last, LastK
from chronon_cli.spec import ttypes

O = ttypes.Operation

OPS: Dict[int, Type[Op]] = {
    O.COUNT: Count,
    O.SUM: Sum,
    O.AVERAGE: Average,
    O.VARIANCE: Variance,
    O.SKEW: Skew,
    O.KURTOSIS: Kurtosis,
    O.MIN: Min,
    O.MAX: Max,
    O.TOP_K: TopK,
    O.BOTTOM_K: BottomK,
    O.FIRST: First,
    O.LAST: Last,
    O.FIRST_K: FirstK,
    O.LAST_K: LastK,
    O.UNIQUE_COUNT: UniqueCount,
    O.BOUNDED_UNIQUE_COUNT: BoundedUniqueCount,
    O.HISTOGRAM: Histogram,
    O.APPROX_UNIQUE_COUNT: ApproxUniqueCount,
    O.APPROX_PERCENTILE: ApproxPercentile,
    O.APPROX_HISTOGRAM_K: ApproxHistogramK,
}


def make_op(operation: int, kind: str, arg_map: Optional[Dict[str, str]] = None, value_type=None) -> Op:
    """The op for ``operation`` over values of ``kind`` (see ``agg.types``); ``value_type`` is the
    input's Arrow type (default: the kind's widest type)."""
    cls = OPS.get(operation)
    if cls is None:
        raise ValueError(f"unknown operation {operation!r}")
    return cls(kind, arg_map, value_type)


def op_name(operation: int) -> str:
    return O._VALUES_TO_NAMES.get(operation, str(operation))


__all__ = ["Op", "OPS", "ValueCodec", "make_op", "op_name"]
