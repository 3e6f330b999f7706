"""Bootcamp: purchase behaviour per user (sum, count, average of purchase_price over 1 and 7 days).

Reads bootcamp.purchases_from_s3 through its StagingQuery, so a backfill runs the staging query's
missing partitions first. Output: bootcamp_features.user_purchase_features.
"""
from ai.chronon.group_by import Accuracy, Aggregation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.query import Query, select
from ai.chronon.staging_query import StagingQueryEventSource
from staging_queries.bootcamp.purchases_from_s3 import v1 as purchases_staging_query

source = StagingQueryEventSource(
    staging_query=purchases_staging_query,
    query=Query(
        selects=select("user_id", "purchase_price", "item_category"),
        time_column="ts",
    ),
)

window_sizes = [Window(length=1, timeUnit=TimeUnit.DAYS), Window(length=7, timeUnit=TimeUnit.DAYS)]

v1 = GroupBy(
    name="user_purchase_features",
    output_namespace="bootcamp_features",
    sources=[source],
    keys=["user_id"],
    aggregations=[
        Aggregation(input_column="purchase_price", operation=Operation.SUM, windows=window_sizes),
        Aggregation(input_column="purchase_price", operation=Operation.COUNT, windows=window_sizes),
        Aggregation(input_column="purchase_price", operation=Operation.AVERAGE, windows=window_sizes),
    ],
    accuracy=Accuracy.SNAPSHOT,
    online=True,
    backfill_start_date="2023-12-01",
    table_properties={
        "provider": "iceberg",
        "format-version": "2",
        "write.format.default": "parquet",
    },
)
