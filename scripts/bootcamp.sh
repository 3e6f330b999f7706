#!/usr/bin/env bash
# Run the bootcamp pipeline end to end on the embedded default profile (local, no services):
# sample data -> compile -> staging queries (S3 parquet -> Iceberg) -> GroupBy backfill -> a look at the output.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "+ python run.py $*"; .venv/bin/python run.py "$@"; }

run --mode=sample-data
run --mode=compile --conf=staging_queries/bootcamp
run --mode=compile --conf=group_bys/bootcamp
run --mode=staging-query-backfill --conf=staging_queries/bootcamp/purchases_from_s3.py \
    --start-date=2023-12-01 --end-date=2023-12-07
run --mode=staging-query-backfill --conf=staging_queries/bootcamp/users_from_s3.py \
    --start-date=2023-12-01 --end-date=2023-12-07
run --mode=backfill --conf=group_bys/bootcamp/user_purchase_features.py \
    --start-date=2023-12-01 --end-date=2023-12-07
run --mode=sql -e "SELECT * FROM bootcamp_features.user_purchase_features ORDER BY ds, user_id LIMIT 10"
