"""Packed sorts (``sorting``) against ``np.lexsort`` on tables large enough for them, and key codes
of chunked columns against those of the concatenated column."""
import numpy as np
import pyarrow as pa
import pytest

from chronon_cli.agg import sorting
from chronon_cli.agg.codes import KeyCodes


def _values(kind: str, rng, n: int) -> np.ndarray:
    if kind == "non_negative":       # the float bits are the sort image
        return np.round(rng.exponential(50.0, n), 2)
    if kind == "mixed":
        return np.round(rng.normal(0.0, 30.0, n), 1) + 0.0     # (no -0.0)
    if kind == "wide":               # leading bits tie for distinct values: those runs are re-sorted
        return rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n)
    if kind == "signed_zeros":       # -0.0 / 0.0 can be told apart: ties kept in (minor, row) order
        x = np.round(rng.normal(0.0, 2.0, n))
        x[rng.random(n) < 0.2] = -0.0
        return x
    if kind == "nan":
        x = np.round(rng.normal(0.0, 2.0, n), 1)
        x[rng.random(n) < 0.05] = np.nan
        return x
    if kind == "infinities":
        x = np.round(rng.normal(0.0, 2.0, n), 1) + 0.0
        x[rng.random(n) < 0.05] = np.inf
        x[rng.random(n) < 0.05] = -np.inf
        return x
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["non_negative", "mixed", "wide", "signed_zeros", "nan", "infinities"])
@pytest.mark.parametrize("n_groups", [1, 300, 1 << 26])
@pytest.mark.parametrize("packing", ["chosen", "argsort", "value_sort"])
def test_by_group_value_is_lexsort_order(kind, n_groups, packing, monkeypatch):
    """``packing``: the float sort as chosen by the sizes, forced to the argsort of (group, leading
    value bits), or forced to the value sort with a row index whatever the bits left (many ties)."""
    if packing != "chosen":
        bits = 64 if packing == "argsort" else 1
        monkeypatch.setattr(sorting, "_MIN_VALUE_BITS", bits)
        monkeypatch.setattr(sorting, "_MIN_SPARSE_VALUE_BITS", bits)
    rng = np.random.default_rng(len(kind) + n_groups)
    n = 20000
    group = rng.integers(0, n_groups, n)
    x = _values(kind, rng, n)
    day = rng.integers(0, 5, n)
    ties = sorting._needs_float_ties(x)
    assert ties == (kind in ("signed_zeros", "nan"))
    minor = (day,) if ties else ()
    for given in (None, ties):
        order = sorting.by_group_value(group, n_groups, x, *minor, float_ties=given)
        want = np.lexsort(tuple(m for m in minor[::-1]) + (x, group))
        assert np.array_equal(group[order], group[want])
        assert np.array_equal(x[order].view(np.int64), x[want].view(np.int64))
        if ties:
            assert np.array_equal(day[order], day[want])


def test_needs_float_ties():
    assert not sorting._needs_float_ties(np.array([0.0, 1.5, np.inf, -np.inf]))
    assert not sorting._needs_float_ties(np.array([2.0, 1.5, np.inf]))
    assert sorting._needs_float_ties(np.array([2.0, np.nan, 1.5]))
    assert sorting._needs_float_ties(np.array([0.0, -0.0]))
    assert sorting._needs_float_ties(np.array([1.0, np.nan]))
    assert sorting._needs_float_ties(np.array([np.inf, -np.inf, np.nan]))
    assert not sorting._needs_float_ties(np.array([np.inf, -np.inf]))     # (inf - inf in the sum)
    assert sorting._needs_float_ties(np.array([1.0, -0.0], dtype=np.float32))
    assert not sorting._needs_float_ties(np.array([1, 2]))


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string(), pa.int64(), pa.float64(), pa.null()])
def test_key_codes_of_chunked_columns(typ):
    """Chunk by chunk dictionary encoding (nulls, empty chunks, sliced chunks): the codes and keys
    of the concatenated column, one key column or several."""
    rng = np.random.default_rng(5)
    if typ == pa.null():
        values = [None] * 50
    elif pa.types.is_integer(typ):
        values = [None if rng.random() < 0.1 else int(v) for v in rng.integers(0, 10 ** 12, 50) // 10 ** 10]
    elif pa.types.is_floating(typ):
        values = [None if rng.random() < 0.1 else float(v) for v in rng.choice([0.0, -0.0, 1.5, np.nan], 50)]
    else:
        values = [None if rng.random() < 0.1 else f"k{v}" for v in rng.integers(0, 12, 50)]
    whole = pa.array(values, type=typ)
    second = pa.array(rng.integers(0, 3, 50))
    cuts = [0, 0, 7, 7, 20, 33, 50]
    chunked = pa.table({"k": pa.chunked_array([whole.slice(a, b - a) for a, b in zip(cuts, cuts[1:])], type=typ),
                        "j": pa.chunked_array([second.slice(a, b - a) for a, b in zip(cuts, cuts[1:])])})
    flat = pa.table({"k": whole, "j": second})
    for cols in (["k"], ["k", "j"]):
        a, b = KeyCodes(chunked, cols), KeyCodes(flat, cols)
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.keep, b.keep) and a.num_keys == b.num_keys
        assert repr(a.keys.to_pylist()) == repr(b.keys.to_pylist()) and a.keys.schema == b.keys.schema
    empty = pa.table({"k": pa.chunked_array([pa.array([], type=typ)] * 2, type=typ)})
    assert KeyCodes(empty, ["k"]).num_keys == 0


@pytest.mark.parametrize("n_groups,ts_span", [(1, 10), (300, 10 ** 6), (40_000, 5 * 10 ** 9), (1 << 26, 10 ** 9)])
@pytest.mark.parametrize("margin", [None, 1e30])
def test_by_group_time_value_is_lexsort_order(n_groups, ts_span, margin, monkeypatch):
    """(group, ts) packed with the row index when it fits, else by its leading bits (sparse groups,
    a wide ts range: ties on them re-sorted by group and ts) or (``margin`` forces it) an argsort;
    ts ties by x, then the minor key, then row."""
    if margin:
        monkeypatch.setattr(sorting, "_TIE_MARGIN", margin)
    rng = np.random.default_rng(n_groups)
    n = 20000
    group = rng.integers(0, n_groups, n)
    ts = rng.integers(0, ts_span, n) + 1_700_000_000_000
    x = np.round(rng.normal(0.0, 3.0, n), 1) + 0.0
    day = rng.integers(0, 3, n)
    order = sorting.by_group_time_value(group, n_groups, ts, x, day)
    want = np.lexsort((day, x, ts, group))
    assert np.array_equal(order, want)
