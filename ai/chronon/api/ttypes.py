"""Chronon's thrift types as plain typed Python classes (no thrift dependency)."""
from chronon_cli.spec.ttypes import (  # noqa: F401
    Accuracy,
    Aggregation,
    Derivation,
    EntitySource,
    EventSource,
    GroupBy,
    Join,
    JoinPart,
    MetaData,
    Operation,
    Query,
    Source,
    StagingQuery,
    TimeUnit,
    Window,
)
