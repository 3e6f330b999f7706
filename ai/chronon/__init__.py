"""Chronon's config API at its own import paths (the tutorial's short form lives here)."""
from ai.chronon.api.ttypes import EntitySource, EventSource, Source
from ai.chronon.group_by import Accuracy, Aggregation, Derivation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.join import Join, JoinPart
from ai.chronon.query import Query, select
from ai.chronon.staging_query import StagingQuery, StagingQueryEntitySource, StagingQueryEventSource

__all__ = [
    "Accuracy", "Aggregation", "Derivation", "EntitySource", "EventSource", "GroupBy", "Join", "JoinPart",
    "Operation", "Query", "Source", "StagingQuery", "StagingQueryEntitySource", "StagingQueryEventSource",
    "TimeUnit", "Window", "select",
]
