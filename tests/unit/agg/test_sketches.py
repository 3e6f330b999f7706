"""Approximate ops stay within the DataSketches documented bounds, before and after merges."""
import math
from collections import Counter

import datasketches as ds
import numpy as np
import pytest

from chronon_cli.agg import types as T
from chronon_cli.agg.ops import make_op
from chronon_cli.spec import ttypes

O = ttypes.Operation


def build(op, values, n_parts, rng):
    """One-pass IR and an IR merged from ``n_parts`` random parts."""
    whole = op.ir_of_values(list(values))
    parts = [[] for _ in range(n_parts)]
    for v in values:
        parts[int(rng.integers(0, n_parts))].append(v)
    merged = None
    for p in parts:
        ir = None
        for v in p:
            ir = op.update(ir, v)
        merged = op.merge(merged, ir)
    return whole, merged


@pytest.mark.parametrize("n,lg_k", [(50, 8), (3000, 8), (20000, 10)])
def test_cpc_within_bounds(n, lg_k):
    rng = np.random.default_rng(n)
    values = rng.integers(0, 10 ** 12, n).tolist()
    truth = len(set(values))
    op = make_op(O.APPROX_UNIQUE_COUNT, T.INT, {"k": str(lg_k)})
    for ir in build(op, values, 7, rng):
        assert ir.lg_k == lg_k
        assert ir.get_lower_bound(3) <= truth <= ir.get_upper_bound(3)
        # CPC relative standard error is about 0.6 / sqrt(2^lgK); allow 4 standard errors
        assert abs(op.finalize(ir) - truth) <= max(2, 4 * 0.6 / math.sqrt(2 ** lg_k) * truth)


def true_rank(sorted_values, q):
    """Normalized inclusive rank of q in the data."""
    return np.searchsorted(sorted_values, q, side="right") / len(sorted_values)


@pytest.mark.parametrize("n,k", [(5000, 128), (40000, 200)])
def test_kll_within_rank_error(n, k):
    rng = np.random.default_rng(k)
    values = rng.lognormal(0, 2, n)
    data = np.sort(values)
    ps = [0.01, 0.25, 0.5, 0.9, 0.999]
    op = make_op(O.APPROX_PERCENTILE, T.FLOAT, {"k": str(k), "percentiles": str(ps)})
    eps = ds.kll_doubles_sketch.get_normalized_rank_error(k, False)
    for ir in build(op, values.tolist(), 9, rng):
        assert isinstance(ir, ds.kll_doubles_sketch) and ir.n == n
        for p, q in zip(ps, op.finalize(ir)):
            assert abs(true_rank(data, q) - p) <= eps + 1.0 / n, (p, q)


def test_percentile_exact_while_n_at_most_k():
    k = 16
    op = make_op(O.APPROX_PERCENTILE, T.FLOAT, {"k": str(k), "percentiles": "[0.0, 0.3, 0.5, 1.0]"})
    rng = np.random.default_rng(0)
    values = rng.normal(size=k).tolist()
    ir = None
    for v in values:
        ir = op.update(ir, v)
    assert isinstance(ir, list) and len(ir) == k   # still exact
    xs = sorted(values)
    # nearest rank: smallest value whose rank i/n >= p
    assert op.finalize(ir) == [xs[0], xs[math.ceil(0.3 * k) - 1], xs[math.ceil(0.5 * k) - 1], xs[-1]]
    ir = op.update(ir, 0.0)
    assert isinstance(ir, ds.kll_doubles_sketch) and ir.n == k + 1
    # merging two exact lists whose union exceeds k switches to the sketch too
    a = op.ir_of_values(values[:10])
    b = op.ir_of_values(values[6:])
    assert isinstance(a, list) and isinstance(b, list)
    assert isinstance(op.merge(a, b), ds.kll_doubles_sketch)


def test_kll_exact_below_k_matches_sketch_semantics():
    """The exact list finalizes exactly as a KLL sketch fed the same values."""
    op = make_op(O.APPROX_PERCENTILE, T.FLOAT, {"k": "50", "percentiles": "[0.1, 0.5, 0.77]"})
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    sk = ds.kll_doubles_sketch(50)
    for v in values:
        sk.update(v)
    assert op.finalize(op.ir_of_values(values)) == sk.get_quantiles([0.1, 0.5, 0.77], True)


def test_frequent_items_within_bounds():
    rng = np.random.default_rng(7)
    n = 30000
    items = [f"item{int(z)}" for z in rng.zipf(1.3, n) if z < 5000]
    truth = Counter(items)
    k = 10
    op = make_op(O.APPROX_HISTOGRAM_K, T.STRING, {"k": str(k)})
    eps = ds.frequent_strings_sketch.get_epsilon_for_lg_size(op.lg_map_size)
    for ir in build(op, items, 6, rng):
        assert isinstance(ir, ds.frequent_strings_sketch)
        out = op.finalize(ir)
        assert len(out) == k
        for item, est in out.items():
            assert abs(est - truth[item]) <= eps * len(items), item
        # the true heaviest items are reported
        for item, _ in truth.most_common(3):
            assert item in out


def test_approx_histogram_exact_until_more_than_k_distinct():
    op = make_op(O.APPROX_HISTOGRAM_K, T.STRING, {"k": "3"})
    ir = op.ir_of_values(list("aabbc"))
    assert ir == {"a": 2, "b": 2, "c": 1}
    assert op.finalize(ir) == {"a": 2, "b": 2, "c": 1}
    ir = op.update(ir, "d")
    assert isinstance(ir, ds.frequent_strings_sketch)
    assert op.finalize(ir) == {"a": 2, "b": 2, "c": 1}   # top 3, ties by value
