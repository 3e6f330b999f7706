"""``Query`` and ``select`` as in Chronon's ``ai.chronon.query``."""
from typing import Dict, List, Optional

from chronon_cli.spec import ttypes


def Query(
    selects: Optional[Dict[str, str]] = None,
    wheres: Optional[List[str]] = None,
    start_partition: Optional[str] = None,
    end_partition: Optional[str] = None,
    time_column: Optional[str] = None,
    setups: Optional[List[str]] = None,
    mutation_time_column: Optional[str] = None,
    reversal_column: Optional[str] = None,
    partition_column: Optional[str] = None,
) -> ttypes.Query:
    """Row-level selects (``{output_column: spark_sql_expression}``), filters and the time column."""
    return ttypes.Query(
        selects=dict(selects) if selects is not None else None,
        wheres=list(wheres) if wheres else None,
        startPartition=start_partition,
        endPartition=end_partition,
        timeColumn=time_column,
        setups=list(setups) if setups else None,
        mutationTimeColumn=mutation_time_column,
        reversalColumn=reversal_column,
        partitionColumn=partition_column,
    )


def select(*args: str, **kwargs: str) -> Dict[str, str]:
    """``select("a", "b", c="expr")`` -> ``{"a": "a", "b": "b", "c": "expr"}``."""
    selects = {column: column for column in args}
    selects.update(kwargs)
    return selects
