"""GroupBy ``derivations``: Spark SQL expressions over a GroupBy's base features, applied before the write.

The projection follows Chronon (``spec.derived.derivation_projection``): ``Derivation("*", "*")``
keeps every base feature (except ones another derivation renames), each other derivation adds a
column ``name`` = ``expression``. Expressions see the keys, ``ds`` and the base feature columns
under their unprefixed names (``purchase_price_sum_7d``); the output prefixes derived columns
like base ones. ``check`` runs the projection over no rows, so a bad expression fails before any
table is written.
"""
from typing import Any, List

import pyarrow as pa

from chronon_cli.engines.spark.sqlerrors import is_spark_error, sql_error
from chronon_cli.errors import ConfigError
from chronon_cli.spec import derived, ttypes


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _columns(group_by: ttypes.GroupBy, base_features: List[str]) -> List[str]:
    keys = [_quoted(k) for k in group_by.keyColumns]
    projected = [f"{expression} AS {_quoted(name)}"
                 for name, expression in derived.derivation_projection(group_by.derivations, base_features)]
    return keys + projected + ["ds"]


def _bad_derivation(df: Any, group_by: ttypes.GroupBy, exc: BaseException) -> ConfigError:
    """The error naming the first derivation whose expression Spark rejects on its own."""
    keys = [_quoted(k) for k in group_by.keyColumns]
    for i, d in enumerate(group_by.derivations or []):
        if d.name == derived.STAR:
            continue
        try:
            df.selectExpr(*keys, f"{d.expression} AS {_quoted(d.name)}")
        except Exception as one:  # noqa: BLE001 - only Spark's analysis errors are expected here
            if not is_spark_error(one):
                raise
            detail = sql_error(one, d.expression, what=f"derivation '{d.name}'").message
            return ConfigError(detail, obj=group_by.metaData.name, field=f"derivations[{i}].expression",
                               hint="expressions are Spark SQL over the keys, ds and the base feature "
                                    "columns (unprefixed names, e.g. " + _example(df, group_by) + ")")
    detail = sql_error(exc, ", ".join(_columns(group_by, feature_columns(df, group_by))),
                       what="derivations").message
    return ConfigError(detail, obj=group_by.metaData.name, field="derivations")


def _example(df: Any, group_by: ttypes.GroupBy) -> str:
    features = feature_columns(df, group_by)
    return features[0] if features else "a key column"


def feature_columns(df: Any, group_by: ttypes.GroupBy) -> List[str]:
    """The base feature columns of ``df`` (all but keys and ds), in order."""
    keys = set(group_by.keyColumns)
    return [c for c in df.columns if c not in keys and c != "ds"]


def _select(df: Any, group_by: ttypes.GroupBy, columns: List[str]) -> Any:
    """``df.selectExpr(columns)``; a ConfigError naming the derivation when Spark rejects one."""
    try:
        return df.selectExpr(*columns)
    except Exception as exc:  # noqa: BLE001
        if not is_spark_error(exc):
            raise
        raise _bad_derivation(df, group_by, exc) from None


def apply(df: Any, group_by: ttypes.GroupBy) -> Any:
    """``df`` (keys, base features, ds) with the GroupBy's derivations: keys, derived features, ds."""
    if not group_by.derivations:
        return df
    return _select(df, group_by, _columns(group_by, feature_columns(df, group_by)))


def derived_only(df: Any, group_by: ttypes.GroupBy) -> Any:
    """Keys, the derived (non-``*``) columns and ds over ``df``, which needs only the keys, ds and
    the base columns the expressions read (``spec.derived.referenced_columns``)."""
    keys = [_quoted(k) for k in group_by.keyColumns]
    columns = [f"{d.expression} AS {_quoted(d.name)}" for d in derived.derived_columns(group_by.derivations)]
    return _select(df, group_by, keys + columns + ["ds"])


def check(spark: Any, group_by: ttypes.GroupBy, base_schema: pa.Schema) -> None:
    """Analyse the derivations over an empty frame of ``base_schema`` (keys, base features, ds):
    a ConfigError naming the derivation if Spark rejects one."""
    from pyspark.sql.pandas.types import from_arrow_schema

    if group_by.derivations:
        apply(spark.createDataFrame([], from_arrow_schema(base_schema)), group_by)
