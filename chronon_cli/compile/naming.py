"""Give compiled objects their names (``team.module.variable``) and resolve staging-query sources."""
import copy
import sys
from typing import Optional

from ai.chronon.utils import ORIGIN_ATTR
from chronon_cli.compile.discover import Found
from chronon_cli.spec import derived, ttypes


def _name_from_origin(obj) -> Optional[tuple]:
    """(team, name) of an object from the module that defined it, if that is a config module."""
    origin = getattr(obj, ORIGIN_ATTR, None)
    module = sys.modules.get(origin or "")
    parts = (origin or "").split(".")
    if module is None or len(parts) < 3:
        return None
    for variable, value in vars(module).items():
        if value is obj:
            return parts[1], ".".join([*parts[1:], variable])
    return None


def _named_staging_query(sq: ttypes.StagingQuery, fallback_team: str) -> ttypes.StagingQuery:
    sq = copy.deepcopy(sq)
    sq.metaData = sq.metaData or ttypes.MetaData()
    origin = _name_from_origin(sq)
    team, name = origin if origin else (fallback_team, None)
    sq.metaData.team = sq.metaData.team or team
    sq.metaData.name = sq.metaData.name or name
    return sq


def _resolve_sources(group_by: ttypes.GroupBy, original: ttypes.GroupBy, team: str) -> None:
    """Fill the table of StagingQueryEventSource/EntitySource from the (named) staging query."""
    for source, original_source in zip(group_by.sources or [], original.sources or []):
        body = derived.source_body(source) if isinstance(source, ttypes.Source) else None
        original_body = derived.source_body(original_source) if isinstance(original_source, ttypes.Source) else None
        if body is None or body.stagingQuery is None:
            continue
        sq = _named_staging_query(original_body.stagingQuery, team)
        body.stagingQuery = sq
        if sq.metaData.name:
            table = derived.output_table(sq)
            if isinstance(body, ttypes.EventSource):
                body.table = table
            else:
                body.snapshotTable = table


def named(found: Found):
    """A deep copy of the found object with metaData.name/team set (the conf's own name wins)."""
    original = found.obj
    obj = copy.deepcopy(original)
    obj.metaData = obj.metaData or ttypes.MetaData()
    obj.metaData.name = obj.metaData.name or found.default_name
    obj.metaData.team = obj.metaData.team or found.team
    if isinstance(obj, ttypes.GroupBy):
        _resolve_sources(obj, original, found.team)
    elif isinstance(obj, ttypes.Join):
        for part, original_part in zip(obj.joinParts or [], original.joinParts or []):
            gb = part.groupBy
            if gb is None:
                continue
            gb.metaData = gb.metaData or ttypes.MetaData()
            origin = _name_from_origin(original_part.groupBy)
            if origin:
                gb.metaData.team = gb.metaData.team or origin[0]
                gb.metaData.name = gb.metaData.name or origin[1]
            _resolve_sources(gb, original_part.groupBy, gb.metaData.team or found.team)
    return obj
