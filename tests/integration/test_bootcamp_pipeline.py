"""The bootcamp pipeline on the local profile: sample data -> GroupBy backfill (running its staging
query as a dependency) -> the table and columns of the bootcamp README, with values checked by hand.
"""
from datetime import date

import pytest

from chronon_cli import api
from chronon_cli.errors import JobError
from chronon_cli.samples.bootcamp import write_sample_data
from chronon_cli.storage import catalog

pytestmark = pytest.mark.spark

CONF = "group_bys/bootcamp/user_purchase_features.py"
README_SCHEMA = [  # ../shared/seeds/003: bootcamp_features.user_purchase_features (Iceberg types)
    ("user_id", "string"),
    ("user_purchase_features_purchase_price_sum_1d", "double"),
    ("user_purchase_features_purchase_price_sum_7d", "double"),
    ("user_purchase_features_purchase_price_count_1d", "long"),
    ("user_purchase_features_purchase_price_count_7d", "long"),
    ("user_purchase_features_purchase_price_average_1d", "double"),
    ("user_purchase_features_purchase_price_average_7d", "double"),
    ("ds", "date"),
]


@pytest.fixture
def bootcamp(local_settings, spark):
    write_sample_data(local_settings)
    return local_settings


def test_no_deps_names_the_missing_staging_partitions(bootcamp):
    with pytest.raises(JobError) as info:
        api.backfill(bootcamp, CONF, date(2023, 12, 1), date(2023, 12, 7), no_deps=True)
    message = str(info.value)
    assert "bootcamp.purchases_from_s3" in message and "2023-12-01" in message and "2023-12-07" in message
    assert not catalog(bootcamp).table_exists("bootcamp_features.user_purchase_features")


def test_backfill_runs_its_staging_query_and_matches_the_readme(bootcamp):
    result = api.backfill(bootcamp, CONF, date(2023, 12, 1), date(2023, 12, 7))
    run = result["runs"][0]
    assert run["dependency_runs"], "the staging query should have run first"
    assert catalog(bootcamp).table_exists("bootcamp.purchases_from_s3")
    assert run["partitions_written"] == 7

    iceberg = catalog(bootcamp).load_table("bootcamp_features.user_purchase_features")
    assert [(f.name, str(f.field_type)) for f in iceberg.schema().fields] == README_SCHEMA
    assert [f.name for f in iceberg.spec().fields] == ["ds"]
    table = iceberg.scan().to_arrow()
    rows = {(r["user_id"], r["ds"]): r for r in table.to_pylist()}

    # user_7's purchases (UTC): 12-04 207.92, 87.99, 130.88; 12-05 19.26, 244.84; 12-07 143.82
    p = "user_purchase_features_purchase_price_"
    assert ("user_7", date(2023, 12, 3)) not in rows
    dec4 = rows[("user_7", date(2023, 12, 4))]
    assert dec4[p + "sum_1d"] == pytest.approx(426.79) and dec4[p + "count_1d"] == 3
    assert dec4[p + "average_7d"] == pytest.approx(426.79 / 3)
    dec5 = rows[("user_7", date(2023, 12, 5))]
    assert dec5[p + "sum_1d"] == pytest.approx(264.10) and dec5[p + "count_7d"] == 5
    assert dec5[p + "sum_7d"] == pytest.approx(690.89) and dec5[p + "average_7d"] == pytest.approx(138.178)
    dec6 = rows[("user_7", date(2023, 12, 6))]  # no purchase that day: 1d is null, COUNT too
    assert dec6[p + "sum_1d"] is None and dec6[p + "count_1d"] is None and dec6[p + "average_1d"] is None
    assert dec6[p + "count_7d"] == 5
    dec7 = rows[("user_7", date(2023, 12, 7))]
    assert dec7[p + "sum_7d"] == pytest.approx(834.71) and dec7[p + "count_7d"] == 6
    assert dec7[p + "average_1d"] == pytest.approx(143.82)

    again = api.backfill(bootcamp, CONF, date(2023, 12, 1), date(2023, 12, 7))["runs"][0]
    assert again["planned_partitions"] == [] and again["dependency_runs"] == []
