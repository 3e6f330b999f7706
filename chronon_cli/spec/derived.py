"""Facts derived from the compiled model, shared by compile and every engine (SEMANTICS §1, §4)."""
import re
from typing import List, Optional

from chronon_cli.spec import ttypes

_NON_IDENT = re.compile(r"[^A-Za-z0-9_]")


def sanitize(name: str) -> str:
    """Every non-[A-Za-z0-9_] character turned into ``_`` (table and column prefixes)."""
    return _NON_IDENT.sub("_", name)


def output_namespace(obj) -> str:
    """The conf's ``output_namespace``, else its team."""
    md = obj.metaData
    return md.outputNamespace or md.team or "default"


def output_table(obj) -> str:
    """``{output_namespace}.{sanitized name}`` of a GroupBy, StagingQuery or Join."""
    return f"{output_namespace(obj)}.{sanitize(obj.metaData.name)}"


def short_name(obj) -> str:
    """Column prefix of a GroupBy's features where they sit next to other columns."""
    return sanitize(obj.metaData.name)


def source_body(source: ttypes.Source):
    """The EventSource or EntitySource inside a Source union."""
    return source.events if source.events is not None else source.entities


def source_table(source: ttypes.Source) -> Optional[str]:
    if source.events is not None:
        return source.events.table
    return source.entities.snapshotTable if source.entities is not None else None


def source_query(source: ttypes.Source) -> ttypes.Query:
    body = source_body(source)
    return body.query if body is not None and body.query is not None else ttypes.Query()


def is_streaming(source: ttypes.Source) -> bool:
    if source.events is not None:
        return bool(source.events.topic)
    return source.entities is not None and bool(source.entities.mutationTopic)


def effective_accuracy(group_by: ttypes.GroupBy) -> int:
    """The conf's accuracy, else TEMPORAL when a source streams (topic/mutationTopic), else SNAPSHOT."""
    if group_by.accuracy is not None:
        return group_by.accuracy
    if any(is_streaming(s) for s in group_by.sources or []):
        return ttypes.Accuracy.TEMPORAL
    return ttypes.Accuracy.SNAPSHOT


def time_column(source: ttypes.Source) -> Optional[str]:
    """The time expression of an event source: ``query.timeColumn``, else the ``ts`` column."""
    if source.events is None:
        return None
    return source_query(source).timeColumn or "ts"


def staging_queries(group_by: ttypes.GroupBy) -> List[ttypes.StagingQuery]:
    """Staging queries a GroupBy reads through StagingQueryEventSource/EntitySource."""
    found = []
    for source in group_by.sources or []:
        body = source_body(source)
        if body is not None and body.stagingQuery is not None:
            found.append(body.stagingQuery)
    return found


STAR = "*"


def derivation_projection(derivations: Optional[List[ttypes.Derivation]], base_columns: List[str]) -> List[tuple]:
    """(output name, expression) of each feature column after ``derivations`` (Chronon's rule).

    With a ``Derivation("*", "*")``, every base column is kept as it is, except those another
    derivation's expression names exactly (a rename: ``Derivation("new", "old")`` replaces ``old``) and
    those a derivation of the same name replaces;
    then each other derivation adds ``name`` = its expression (Spark SQL over the keys, the base
    feature columns and ``ds``). Without ``*``, only the derivations are output. No derivations:
    the base columns, unchanged."""
    if not derivations:
        return [(c, c) for c in base_columns]
    return [(c, c) for c in kept_base_columns(derivations, base_columns)] + \
        [(d.name, d.expression) for d in derived_columns(derivations)]


def derived_columns(derivations: List[ttypes.Derivation]) -> List[ttypes.Derivation]:
    """The derivations that add a column (all but ``Derivation("*", "*")``), in order."""
    return [d for d in derivations if d.name != STAR]


def kept_base_columns(derivations: List[ttypes.Derivation], base_columns: List[str]) -> List[str]:
    """The base columns ``Derivation("*", "*")`` keeps as they are (none without it): not those a
    derivation renames, nor those a derivation of the same name replaces (``Derivation("x", "x * 2")``)."""
    if not any(d.name == STAR for d in derivations):
        return []
    replaced = {d.expression for d in derivations} | {d.name for d in derivations}
    return [c for c in base_columns if c not in replaced]


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STAR_REFERENCE = re.compile(r"(^|[(,.]\s*)\*\s*($|[),])")  # struct(*), f(a, *), t.*: not a * b


def referenced_columns(derivations: List[ttypes.Derivation], columns: List[str]) -> List[str]:
    """The ``columns`` the derivation expressions may read: those they spell (Spark resolves names
    case-insensitively), or all of them when an expression uses a ``*`` column reference."""
    expressions = [d.expression for d in derived_columns(derivations)]
    if any(_STAR_REFERENCE.search(e) for e in expressions):
        return list(columns)
    spelled = {word.lower() for e in expressions for word in _IDENTIFIER.findall(e)}
    return [c for c in columns if c.lower() in spelled]
