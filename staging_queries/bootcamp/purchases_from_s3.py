"""Bootcamp: load raw purchases from S3 parquet into the Iceberg table bootcamp.purchases_from_s3."""
from ai.chronon.staging_query import StagingQuery

query = """
SELECT
    user_id,
    purchase_price,
    item_category,
    ts,
    TO_DATE(TIMESTAMP_MILLIS(ts)) AS ds
FROM purchases_raw
WHERE TO_DATE(TIMESTAMP_MILLIS(ts)) BETWEEN DATE '{{ start_date }}' AND DATE '{{ end_date }}'
"""

v1 = StagingQuery(
    name="purchases_from_s3",
    output_namespace="bootcamp",
    query=query,
    start_partition="2023-12-01",
    setups=[
        "CREATE TEMPORARY VIEW purchases_raw USING parquet "
        "OPTIONS (path 's3a://chronon/warehouse/data/purchases/purchases.parquet')",
    ],
    table_properties={
        "provider": "iceberg",
        "format-version": "2",
        "write.format.default": "parquet",
    },
)
