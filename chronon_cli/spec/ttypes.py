"""The compiled model: plain typed classes mirroring Chronon's thrift structs (api.thrift).

Field names are Chronon's own (camelCase) so the JSON codec writes Chronon-shaped compiled files
and existing configs that build ``ttypes`` objects directly keep working. No thrift dependency.
Engine-free: nothing here imports pyspark, pyflink or storage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional


class Operation:
    """Aggregation operations, with Chronon's thrift enum numbers (stored in compiled JSON)."""

    MIN = 0
    MAX = 1
    FIRST = 2
    LAST = 3
    UNIQUE_COUNT = 4
    APPROX_UNIQUE_COUNT = 5
    COUNT = 6
    SUM = 7
    AVERAGE = 8
    VARIANCE = 9
    SKEW = 10
    KURTOSIS = 11
    APPROX_PERCENTILE = 12
    LAST_K = 13
    FIRST_K = 14
    TOP_K = 15
    BOTTOM_K = 16
    HISTOGRAM = 17
    APPROX_HISTOGRAM_K = 18
    BOUNDED_UNIQUE_COUNT = 19

    _VALUES_TO_NAMES = {
        0: "MIN", 1: "MAX", 2: "FIRST", 3: "LAST", 4: "UNIQUE_COUNT", 5: "APPROX_UNIQUE_COUNT",
        6: "COUNT", 7: "SUM", 8: "AVERAGE", 9: "VARIANCE", 10: "SKEW", 11: "KURTOSIS",
        12: "APPROX_PERCENTILE", 13: "LAST_K", 14: "FIRST_K", 15: "TOP_K", 16: "BOTTOM_K",
        17: "HISTOGRAM", 18: "APPROX_HISTOGRAM_K", 19: "BOUNDED_UNIQUE_COUNT",
    }
    _NAMES_TO_VALUES = {v: k for k, v in _VALUES_TO_NAMES.items()}


class TimeUnit:
    HOURS = 0
    DAYS = 1
    MINUTES = 2

    _VALUES_TO_NAMES = {0: "HOURS", 1: "DAYS", 2: "MINUTES"}
    _NAMES_TO_VALUES = {v: k for k, v in _VALUES_TO_NAMES.items()}


class Accuracy:
    TEMPORAL = 0
    SNAPSHOT = 1

    _VALUES_TO_NAMES = {0: "TEMPORAL", 1: "SNAPSHOT"}
    _NAMES_TO_VALUES = {v: k for k, v in _VALUES_TO_NAMES.items()}


@dataclass
class Query:
    selects: Optional[Dict[str, str]] = None
    wheres: Optional[List[str]] = None
    startPartition: Optional[str] = None
    endPartition: Optional[str] = None
    timeColumn: Optional[str] = None
    setups: Optional[List[str]] = None
    mutationTimeColumn: Optional[str] = None
    reversalColumn: Optional[str] = None
    partitionColumn: Optional[str] = None


@dataclass
class MetaData:
    name: Optional[str] = None
    online: Optional[bool] = None
    production: Optional[bool] = None
    customJson: Optional[str] = None
    dependencies: Optional[List[str]] = None
    tableProperties: Optional[Dict[str, str]] = None
    outputNamespace: Optional[str] = None
    team: Optional[str] = None
    modeToEnvMap: Optional[Dict[str, Dict[str, str]]] = None
    consistencyCheck: Optional[bool] = None
    samplePercent: Optional[float] = None
    offlineSchedule: Optional[str] = None
    version: Optional[str] = None


@dataclass
class StagingQuery:
    metaData: Optional[MetaData] = None
    query: Optional[str] = None
    startPartition: Optional[str] = None
    setups: Optional[List[str]] = None


@dataclass
class EventSource:
    table: Optional[str] = None
    topic: Optional[str] = None
    query: Optional[Query] = None
    isCumulative: Optional[bool] = None
    # chronon-cli extension: the StagingQuery that produces ``table`` (StagingQueryEventSource),
    # embedded so a backfill can run its missing partitions first.
    stagingQuery: Optional["StagingQuery"] = None


@dataclass
class EntitySource:
    snapshotTable: Optional[str] = None
    mutationTable: Optional[str] = None
    mutationTopic: Optional[str] = None
    query: Optional[Query] = None
    stagingQuery: Optional["StagingQuery"] = None


@dataclass
class Source:
    """A union: exactly one of ``events`` / ``entities`` is set."""

    events: Optional[EventSource] = None
    entities: Optional[EntitySource] = None


@dataclass
class Window:
    length: Optional[int] = None
    timeUnit: Optional[int] = None


@dataclass
class Aggregation:
    inputColumn: Optional[str] = None
    operation: Optional[int] = None
    argMap: Optional[Dict[str, str]] = None
    windows: Optional[List[Window]] = None
    buckets: Optional[List[str]] = None


@dataclass
class Derivation:
    name: Optional[str] = None
    expression: Optional[str] = None


@dataclass
class GroupBy:
    metaData: Optional[MetaData] = None
    sources: Optional[List[Source]] = None
    keyColumns: Optional[List[str]] = None
    aggregations: Optional[List[Aggregation]] = None
    accuracy: Optional[int] = None
    backfillStartDate: Optional[str] = None
    derivations: Optional[List[Derivation]] = None
    isIncremental: Optional[bool] = None


@dataclass
class JoinPart:
    groupBy: Optional[GroupBy] = None
    keyMapping: Optional[Dict[str, str]] = None
    prefix: Optional[str] = None


@dataclass
class Join:
    metaData: Optional[MetaData] = None
    left: Optional[Source] = None
    joinParts: List[JoinPart] = field(default_factory=list)
    skewKeys: Optional[Dict[str, List[str]]] = None
    rowIds: Optional[List[str]] = None
    derivations: Optional[List[Derivation]] = None


# Field name -> nested struct class, used by the JSON codec to rebuild objects.
NESTED_TYPES = {
    (StagingQuery, "metaData"): MetaData,
    (EventSource, "query"): Query,
    (EventSource, "stagingQuery"): StagingQuery,
    (EntitySource, "query"): Query,
    (EntitySource, "stagingQuery"): StagingQuery,
    (Source, "events"): EventSource,
    (Source, "entities"): EntitySource,
    (Aggregation, "windows"): [Window],
    (GroupBy, "metaData"): MetaData,
    (GroupBy, "sources"): [Source],
    (GroupBy, "aggregations"): [Aggregation],
    (GroupBy, "derivations"): [Derivation],
    (JoinPart, "groupBy"): GroupBy,
    (Join, "metaData"): MetaData,
    (Join, "left"): Source,
    (Join, "joinParts"): [JoinPart],
    (Join, "derivations"): [Derivation],
}
