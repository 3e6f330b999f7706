"""Bootcamp: load users from S3 parquet into bootcamp.users_from_s3, one snapshot per ds.

Each ds partition holds every user whose account existed by the end of that day.
"""
from ai.chronon.staging_query import StagingQuery

query = """
SELECT
    user_id,
    email_verified,
    country,
    account_created_ts,
    snapshot_ds AS ds
FROM users_raw
LATERAL VIEW EXPLODE(SEQUENCE(DATE '{{ start_date }}', DATE '{{ end_date }}')) days AS snapshot_ds
WHERE TO_DATE(TIMESTAMP_MILLIS(account_created_ts)) <= snapshot_ds
"""

v1 = StagingQuery(
    name="users_from_s3",
    output_namespace="bootcamp",
    query=query,
    start_partition="2023-12-01",
    setups=[
        "CREATE TEMPORARY VIEW users_raw USING parquet "
        "OPTIONS (path 's3a://chronon/warehouse/data/users/users.parquet')",
    ],
    table_properties={
        "provider": "iceberg",
        "format-version": "2",
        "write.format.default": "parquet",
    },
)
