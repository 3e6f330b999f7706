"""StagingQuery DSL: arbitrary Spark SQL materialized into a ``ds``-partitioned table.

``StagingQueryEventSource`` / ``StagingQueryEntitySource`` make a GroupBy read a staging query's
output table and let the backfill run the staging query's missing partitions first.
"""
import json
from typing import Any, Dict, List, Optional

from ai.chronon.utils import stamp_origin
from chronon_cli.spec import ttypes


def StagingQuery(
    query: Optional[str] = None,
    setups: Optional[List[str]] = None,
    start_partition: Optional[str] = None,
    name: Optional[str] = None,
    output_namespace: Optional[str] = None,
    table_properties: Optional[Dict[str, str]] = None,
    online: Optional[bool] = None,
    production: Optional[bool] = None,
    dependencies: Optional[List[str]] = None,
    env: Optional[Dict[str, Dict[str, str]]] = None,
    team: Optional[str] = None,
    version: Optional[Any] = None,
    metaData: Optional[ttypes.MetaData] = None,
    startPartition: Optional[str] = None,
    tableProperties: Optional[Dict[str, str]] = None,
    **kwargs: Any,
) -> ttypes.StagingQuery:
    """A staging query. Accepts Python-style keywords and Chronon's thrift-style ``metaData=``."""
    metadata = metaData or ttypes.MetaData()
    props = table_properties or tableProperties
    overrides = {
        "name": name,
        "outputNamespace": output_namespace,
        "tableProperties": {str(k): str(v) for k, v in props.items()} if props else None,
        "online": online,
        "production": production,
        "dependencies": list(dependencies) if dependencies else None,
        "modeToEnvMap": env,
        "team": team,
        "version": str(version) if version is not None else None,
        "customJson": json.dumps(kwargs, sort_keys=True) if kwargs else None,
    }
    for field_name, value in overrides.items():
        if value is not None:
            setattr(metadata, field_name, value)
    return stamp_origin(ttypes.StagingQuery(
        metaData=metadata,
        query=query,
        startPartition=start_partition or startPartition,
        setups=list(setups) if setups else None,
    ))


def StagingQueryEventSource(
    staging_query: ttypes.StagingQuery, query: Optional[ttypes.Query] = None, topic: Optional[str] = None
) -> ttypes.Source:
    """An event source reading ``staging_query``'s output table (its name is resolved at compile)."""
    return ttypes.Source(events=ttypes.EventSource(topic=topic, query=query, stagingQuery=staging_query))


def StagingQueryEntitySource(
    staging_query: ttypes.StagingQuery, query: Optional[ttypes.Query] = None
) -> ttypes.Source:
    """An entity (daily snapshot) source reading ``staging_query``'s output table."""
    return ttypes.Source(entities=ttypes.EntitySource(query=query, stagingQuery=staging_query))
