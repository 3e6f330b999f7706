"""The shared aggregation IR package: ops, windows, buckets, IR encoding, reference evaluator.

Engine-free: imports numpy, pyarrow, datasketches and ``chronon_cli.spec`` only.

    from chronon_cli.agg import GroupByAggregator, windows, reference, encoding
    agg = GroupByAggregator(group_by, input_schema)
    irs = agg.daily_irs(events)             # one row per (keys, ds)
    features = agg.snapshot(irs, dates)     # daily snapshots
"""
from chronon_cli.agg import encoding, reference, windows
from chronon_cli.agg.aggregator import GroupByAggregator

__all__ = ["GroupByAggregator", "windows", "reference", "encoding"]
