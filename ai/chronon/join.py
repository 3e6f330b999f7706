"""Join DSL as in Chronon's ``ai.chronon.join``: a left source enriched by GroupBys (JoinParts)."""
from typing import Any, Dict, List, Optional

from ai.chronon.utils import stamp_origin
from chronon_cli.spec import ttypes


def JoinPart(
    group_by: ttypes.GroupBy,
    key_mapping: Optional[Dict[str, str]] = None,
    prefix: Optional[str] = None,
) -> ttypes.JoinPart:
    return ttypes.JoinPart(groupBy=group_by, keyMapping=dict(key_mapping) if key_mapping else None, prefix=prefix)


def Join(
    left: ttypes.Source,
    right_parts: List[ttypes.JoinPart],
    online: Optional[bool] = None,
    production: Optional[bool] = None,
    output_namespace: Optional[str] = None,
    table_properties: Optional[Dict[str, str]] = None,
    env: Optional[Dict[str, Dict[str, str]]] = None,
    name: Optional[str] = None,
    team: Optional[str] = None,
    row_ids: Optional[List[str]] = None,
    derivations: Optional[List[ttypes.Derivation]] = None,
    version: Optional[Any] = None,
    **kwargs: Any,
) -> ttypes.Join:
    if isinstance(left, ttypes.EventSource):
        left = ttypes.Source(events=left)
    elif isinstance(left, ttypes.EntitySource):
        left = ttypes.Source(entities=left)
    metadata = ttypes.MetaData(
        name=name,
        online=online,
        production=production,
        outputNamespace=output_namespace,
        tableProperties={str(k): str(v) for k, v in table_properties.items()} if table_properties else None,
        modeToEnvMap=env,
        team=team,
        version=str(version) if version is not None else None,
    )
    return stamp_origin(ttypes.Join(
        metaData=metadata,
        left=left,
        joinParts=list(right_parts),
        rowIds=list(row_ids) if row_ids else None,
        derivations=list(derivations) if derivations else None,
    ))
