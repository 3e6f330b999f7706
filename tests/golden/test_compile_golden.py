"""Golden tests: the sample configs compile to exactly the JSON checked in under tests/golden/expected.

After an intended change, regenerate with ``CHRONON_REGENERATE_GOLDEN=1 scripts/test.sh tests/golden``
and review the diff like code.
"""
import json
import os
from pathlib import Path

import pytest

from chronon_cli import compile as compiler
from chronon_cli.spec import codec

REPO = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).parent / "expected"
REGENERATE = os.environ.get("CHRONON_REGENERATE_GOLDEN") == "1"
SAMPLES = ["staging_queries", "group_bys", "joins"]


def compiled_samples():
    return [item for kind in SAMPLES for item in compiler.load(kind, REPO)]


@pytest.mark.parametrize("kind", SAMPLES)
def test_samples_match_golden_json(kind):
    items = compiler.load(kind, REPO)
    assert items, f"no sample {kind}"
    for item in items:
        golden = EXPECTED / item.output.relative_to(REPO / "production")
        if REGENERATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(item.json)
        assert golden.exists(), f"no golden file {golden}; run with CHRONON_REGENERATE_GOLDEN=1"
        assert item.json == golden.read_text(), f"{item.name} compiled differently from {golden}"
    names = {str(p.relative_to(EXPECTED / kind)) for p in (EXPECTED / kind).rglob("*") if p.is_file()}
    assert names == {str(i.output.relative_to(REPO / "production" / kind)) for i in items}


def test_golden_files_decode_into_the_model():
    for path in EXPECTED.rglob("*.v1"):
        kind = codec.KINDS[path.relative_to(EXPECTED).parts[0]]
        obj = codec.from_json(kind, path.read_text())
        assert codec.to_json(obj) == path.read_text()


def test_bootcamp_group_by_reads_the_staging_query_table():
    doc = json.loads((EXPECTED / "group_bys/bootcamp/user_purchase_features.v1").read_text())
    events = doc["sources"][0]["events"]
    assert events["table"] == "bootcamp.purchases_from_s3"
    assert events["stagingQuery"]["metaData"]["name"] == "purchases_from_s3"
    assert doc["metaData"]["outputNamespace"] == "bootcamp_features"
    assert [(a["operation"], [w["length"] for w in a["windows"]]) for a in doc["aggregations"]] == [
        (7, [1, 7]), (6, [1, 7]), (8, [1, 7])]  # SUM, COUNT, AVERAGE in Chronon's enum numbers


def test_quickstart_group_by_uses_chronon_shapes():
    doc = json.loads((EXPECTED / "group_bys/quickstart/purchases.v1").read_text())
    assert doc["metaData"]["name"] == "quickstart.purchases.v1"
    assert doc["metaData"]["online"] is True
    assert doc["keyColumns"] == ["user_id"]
    last_k = doc["aggregations"][3]
    assert last_k == {"argMap": {"k": "10"}, "inputColumn": "purchase_price", "operation": 13}
    assert [w["length"] for w in doc["aggregations"][0]["windows"]] == [3, 14, 30]
