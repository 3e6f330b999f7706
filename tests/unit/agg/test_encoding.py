"""IR encoding: golden bytes (stored data stays readable), round trips, rejected inputs;
and the columnar <-> Python row conversion."""
import numpy as np
import pyarrow as pa
import pytest

from .agg_testlib import SCHEMA, random_events, to_table
from chronon_cli.agg import GroupByAggregator, encoding
from chronon_cli.agg.encoding import IREncodingError
from chronon_cli.spec import ttypes
from .agg_testlib import all_ops_group_by

O = ttypes.Operation


def golden_aggregator(extra=()):
    def A(col, op, args=None, buckets=None, windows=None):
        return ttypes.Aggregation(inputColumn=col, operation=op, argMap=args, buckets=buckets, windows=windows)

    gb = ttypes.GroupBy(keyColumns=["user_id"], aggregations=[
        A("price", O.SUM, windows=[ttypes.Window(7, ttypes.TimeUnit.DAYS)]), A("price", O.COUNT),
        A("price", O.AVERAGE), A("item", O.LAST), A("item", O.HISTOGRAM), A("price", O.LAST_K, {"k": "2"}),
        A("price", O.VARIANCE), A("qty", O.SUM, buckets=["item"]), A("item", O.APPROX_UNIQUE_COUNT), *extra,
    ])
    schema = pa.schema([("user_id", pa.string()), ("price", pa.float64()), ("item", pa.string()), ("qty", pa.int64())])
    return GroupByAggregator(gb, schema)


GOLDEN_FULL = (
    "01ee0640e309ff0108000000000000204001060b01000000000000204001060901a01f0104706561720e02056170706c650404"
    "7065617202190201a01f01000000000000f83f01a01f0100000000000010401401060155555555555505400155555555555509"
    "400e02056170706c650a047065617201252408011008000ecc9302000000010000000000000000e86f400208208000020040be"
    "5b0100"
)
GOLDEN_SPARSE = (
    "01ee0640e309180105010a0101780401017802252408011008000ecc9301000000010000000000000000fc6f40000000000000"
    "f03f2b070000"
)
GOLDEN_EMPTY = "01ee0640e3090000"


def golden_rows(agg):
    full = agg.empty_row()
    for ts, p, it, q in [(1000, 2.5, "apple", 3), (2000, 4.0, "pear", -1), (2000, 1.5, "apple", 2)]:
        agg.update_row(full, {"ts": ts, "price": p, "item": it, "qty": q})
    sparse = agg.update_row(agg.empty_row(), {"ts": 5, "price": None, "item": "x", "qty": None})
    return full, sparse, agg.empty_row()


def test_golden_bytes():
    agg = golden_aggregator()
    assert encoding.FORMAT_VERSION == 1
    assert encoding.layout_fingerprint(agg) == 0xEE0640E3
    full, sparse, empty = golden_rows(agg)
    assert encoding.encode(agg, full).hex() == GOLDEN_FULL
    assert encoding.encode(agg, sparse).hex() == GOLDEN_SPARSE
    assert encoding.encode(agg, empty).hex() == GOLDEN_EMPTY


def test_golden_bytes_decode():
    agg = golden_aggregator()
    full = encoding.decode(agg, bytes.fromhex(GOLDEN_FULL))
    assert full[:5] == [8.0, 3, (8.0, 3), (2000, "pear"), {"apple": 2, "pear": 1}]
    assert full[5] == [(2000, 1.5), (2000, 4.0)]
    assert full[7] == {"apple": 5, "pear": -1}
    assert agg.finalize(full)["item_approx_unique_count"] == 2
    assert agg.finalize(full)["price_last2"] == [4.0, 1.5]
    assert encoding.decode(agg, bytes.fromhex(GOLDEN_EMPTY)) == [None] * 9
    sparse = encoding.decode(agg, bytes.fromhex(GOLDEN_SPARSE))
    assert sparse[3] == (5, "x") and sparse[0] is None


def test_header_layout():
    data = bytes.fromhex(GOLDEN_SPARSE)
    assert data[0] == 1                                  # version
    assert data[1:5] == bytes.fromhex("ee0640e3")        # layout fingerprint
    assert data[5] == 9                                  # 9 IR columns
    assert data[6:8] == bytes([0b00011000, 0b00000001])  # columns 3, 4 and 8 present


def test_rejects_other_versions_layouts_and_corruption():
    agg = golden_aggregator()
    good = bytes.fromhex(GOLDEN_FULL)
    with pytest.raises(IREncodingError, match="version"):
        encoding.decode(agg, b"\x02" + good[1:])
    other = golden_aggregator(extra=[ttypes.Aggregation(inputColumn="qty", operation=O.MAX)])
    with pytest.raises(IREncodingError, match="layout"):
        encoding.decode(other, good)
    with pytest.raises(IREncodingError):
        encoding.decode(agg, good[:-3])
    with pytest.raises(IREncodingError, match="trailing"):
        encoding.decode(agg, good + b"\x00")
    with pytest.raises(IREncodingError):
        encoding.decode(agg, b"")


def test_extreme_values_round_trip():
    agg = golden_aggregator()
    row = agg.empty_row()
    row[0] = float("-0.0")
    row[1] = 2 ** 63 - 1
    row[7] = {"": -(2 ** 63), "ü\u0000": 0}
    row[6] = (1, 1e308, 0.0)
    back = encoding.decode(agg, encoding.encode(agg, row))
    assert back[1] == 2 ** 63 - 1 and back[7] == row[7] and back[6] == row[6]
    assert str(back[0]) == "-0.0"


def test_dict_rows_accepted():
    agg = golden_aggregator()
    assert encoding.encode(agg, {"price_count": 4}) == encoding.encode(agg, [None, 4] + [None] * 7)
    with pytest.raises(ValueError):
        encoding.encode(agg, {"nope": 1})


def random_ir_rows(agg, seed, n_rows=40):
    rng = np.random.default_rng(seed)
    rows = []
    events = random_events(rng, 400)
    for r in range(n_rows):
        row = agg.empty_row()
        for e in events[r * 10:(r + 1) * 10]:
            agg.update_row(row, e)
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_every_op(seed):
    agg = GroupByAggregator(all_ops_group_by(), SCHEMA)
    for row in random_ir_rows(agg, seed):
        data = encoding.encode(agg, row)
        back = encoding.decode(agg, data)
        assert agg.row_to_storage(back) == agg.row_to_storage(row)
        assert encoding.encode(agg, back) == data


def test_columnar_round_trip():
    agg = GroupByAggregator(all_ops_group_by(), SCHEMA)
    rng = np.random.default_rng(3)
    table = agg.daily_irs(to_table(random_events(rng, 300)))
    rows = agg.ir_table_to_rows(table)
    assert len(rows) == table.num_rows
    assert agg.ir_rows_to_table(rows).equals(table)
    # python rows -> table -> rows
    py = random_ir_rows(agg, 4)
    dict_rows = [{"u": f"k{i}", "v": i, "ds": None, "irs": r} for i, r in enumerate(py)]
    back = agg.ir_table_to_rows(agg.ir_rows_to_table(dict_rows))
    assert [agg.row_to_storage(r["irs"]) for r in back] == [agg.row_to_storage(r) for r in py]
    # and every stored IR also survives the byte encoding
    for r in rows:
        assert agg.row_to_storage(encoding.decode(agg, encoding.encode(agg, r["irs"]))) == agg.row_to_storage(r["irs"])
