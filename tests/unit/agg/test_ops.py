"""Every op: split/merge == one pass, add-then-delete == never added, finalize == reference."""
import math
import random

import pytest
from hypothesis import given, settings, strategies as st

from .agg_testlib import close
from chronon_cli.agg import reference, types as T
from chronon_cli.agg.ops import OPS, make_op
from chronon_cli.spec import ttypes

O = ttypes.Operation

# (operation, kind, argMap) cases covering every op
CASES = [
    (O.COUNT, T.STRING, None), (O.COUNT, T.FLOAT, None),
    (O.SUM, T.INT, None), (O.SUM, T.FLOAT, None), (O.SUM, T.BOOL, None),
    (O.AVERAGE, T.FLOAT, None), (O.AVERAGE, T.INT, None),
    (O.VARIANCE, T.FLOAT, None), (O.SKEW, T.FLOAT, None), (O.KURTOSIS, T.FLOAT, None),
    (O.MIN, T.FLOAT, None), (O.MIN, T.STRING, None), (O.MAX, T.INT, None), (O.MAX, T.STRING, None),
    (O.TOP_K, T.INT, {"k": "3"}), (O.BOTTOM_K, T.STRING, {"k": "2"}),
    (O.FIRST, T.STRING, None), (O.LAST, T.INT, None), (O.FIRST, T.FLOAT, None),
    (O.FIRST_K, T.INT, {"k": "3"}), (O.LAST_K, T.STRING, {"k": "2"}),
    (O.UNIQUE_COUNT, T.INT, None), (O.UNIQUE_COUNT, T.STRING, None),
    (O.BOUNDED_UNIQUE_COUNT, T.INT, {"k": "4"}),
    (O.HISTOGRAM, T.STRING, None), (O.HISTOGRAM, T.INT, {"k": "2"}),
    (O.APPROX_UNIQUE_COUNT, T.INT, None),
    (O.APPROX_PERCENTILE, T.FLOAT, {"percentiles": "[0.0, 0.25, 0.5, 0.99, 1.0]", "k": "64"}),
    (O.APPROX_HISTOGRAM_K, T.STRING, {"k": "3"}),
]
EXACT_WHEN_SMALL = {O.APPROX_PERCENTILE, O.APPROX_HISTOGRAM_K}
MOMENTS = {O.SKEW, O.KURTOSIS}


def test_cases_cover_every_op():
    assert {c[0] for c in CASES} == set(OPS)


def values_strategy(kind):
    if kind == T.INT:
        return st.integers(-50, 50)
    if kind == T.FLOAT:
        return st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: round(x, 2))
    if kind == T.BOOL:
        return st.booleans()
    return st.sampled_from(["a", "b", "c", "dd", "é", ""])


def items_strategy(kind):
    """(ts, value) items with nulls, NaN (floats) and ts ties."""
    value = st.one_of(st.none(), values_strategy(kind))
    if kind == T.FLOAT:
        value = st.one_of(value, st.just(float("nan")))
    return st.lists(st.tuples(st.integers(0, 20), value), max_size=40)


def one_pass(op, items):
    ir = None
    for ts, v in items:
        ir = op.update(ir, v, ts)
    return ir


def storage_equal(op, a, b):
    return op.to_storage(a) == op.to_storage(b)


def finalized_equal(op, operation, a, b):
    fa, fb = op.finalize(a), op.finalize(b)
    if operation in MOMENTS:
        return close(fa, fb, 1e-6, 1e-6)
    if operation == O.APPROX_UNIQUE_COUNT:
        return (fa is None) == (fb is None) and (fa is None or abs(fa - fb) <= max(2, 0.15 * fb))
    return close(fa, fb)


def reference_value(operation, kind, args, items):
    """The reference evaluator's answer for these items (one key, lifetime)."""
    schema_args = {k: v for k, v in (args or {}).items()}
    gb = ttypes.GroupBy(keyColumns=["key"], aggregations=[
        ttypes.Aggregation(inputColumn="x", operation=operation, argMap=schema_args or None)])
    events = [{"key": 1, "x": v, "ts": ts} for ts, v in items]
    out = reference.temporal(gb, events, [{"key": 1, "ts": 10 ** 6}])[0]
    return next(v for k, v in out.items() if k not in ("key", "ts"))


@pytest.mark.parametrize("operation,kind,args", CASES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_split_merge_equals_one_pass(operation, kind, args, data):
    op = make_op(operation, kind, args)
    items = data.draw(items_strategy(kind))
    n_parts = data.draw(st.integers(1, 5))
    rnd = random.Random(data.draw(st.integers(0, 10 ** 6)))
    parts = [[] for _ in range(n_parts)]
    for item in items:
        parts[rnd.randrange(n_parts)].append(item)
    irs = [one_pass(op, p) for p in parts]
    rnd.shuffle(irs)
    merged = None
    # random merge tree: repeatedly merge two random IRs
    pool = [op.clone(ir) for ir in irs]
    while len(pool) > 1:
        i, j = sorted(rnd.sample(range(len(pool)), 2))
        b = pool.pop(j)
        a = pool.pop(i)
        pool.append(op.merge(a, b) if rnd.random() < 0.5 else op.merge(b, a))
    merged = pool[0]
    whole = one_pass(op, items)
    assert finalized_equal(op, operation, merged, whole)
    expected = reference_value(operation, kind, args, items)
    if operation == O.APPROX_UNIQUE_COUNT:
        assert (expected is None) == (op.finalize(whole) is None)
        if expected is not None:
            assert abs(op.finalize(whole) - expected) <= max(2, 0.15 * expected)
    elif operation in MOMENTS:
        assert close(op.finalize(whole), expected, 1e-6, 1e-6)
    else:
        assert close(op.finalize(whole), expected), (op.finalize(whole), expected)
    # exact ops: merged IR state equals one-pass state, not only the finalized value
    if operation in {O.COUNT, O.MIN, O.MAX, O.TOP_K, O.BOTTOM_K, O.FIRST, O.LAST, O.FIRST_K, O.LAST_K,
                     O.UNIQUE_COUNT, O.BOUNDED_UNIQUE_COUNT, O.HISTOGRAM} or (operation == O.SUM and kind != T.FLOAT):
        assert storage_equal(op, merged, whole)


def test_merge_does_not_mutate_second_argument():
    for operation, kind, args in CASES:
        op = make_op(operation, kind, args)
        rnd = random.Random(1)
        vals = {T.INT: lambda: rnd.randint(0, 9), T.FLOAT: lambda: rnd.random(), T.BOOL: lambda: rnd.random() < .5,
                T.STRING: lambda: rnd.choice("abcdefghij")}[kind]
        a = one_pass(op, [(i, vals()) for i in range(30)])
        b = one_pass(op, [(i, vals()) for i in range(30)])
        before = op.to_storage(b)
        op.merge(a, b)
        assert op.to_storage(b) == before, operation


DELETABLE = [(O.COUNT, T.INT), (O.SUM, T.INT), (O.SUM, T.FLOAT), (O.AVERAGE, T.FLOAT), (O.HISTOGRAM, T.STRING)]


def test_deletable_flags():
    deletable = {op for op, cls in OPS.items() if cls.deletable}
    assert deletable == {O.COUNT, O.SUM, O.AVERAGE, O.HISTOGRAM}
    with pytest.raises(TypeError):
        make_op(O.MAX, T.INT).delete(3, 3)


@pytest.mark.parametrize("operation,kind", DELETABLE)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_add_then_delete_equals_never_added(operation, kind, data):
    op = make_op(operation, kind)
    base_items = data.draw(items_strategy(kind))
    extra = data.draw(items_strategy(kind))
    base = one_pass(op, base_items)
    ir = op.clone(base)
    for ts, v in extra:
        ir = op.update(ir, v, ts)
    for ts, v in extra:
        ir = op.delete(ir, v, ts)
    if operation == O.SUM and base is None:
        # a SUM IR has no count: deleting everything leaves 0, not "empty"
        assert ir in (None, 0) or math.isclose(ir, 0.0, abs_tol=1e-6)
        return
    if kind == T.FLOAT:
        assert close(op.finalize(ir), op.finalize(base), 1e-9, 1e-6)
    else:
        assert op.to_storage(ir) == op.to_storage(base)


def test_count_delete_to_empty_is_null():
    op = make_op(O.COUNT, T.INT)
    ir = op.update(None, 5)
    ir = op.delete(ir, 5)
    assert ir is None and op.finalize(ir) is None


def test_nulls_and_nan_ignored_empty_is_null():
    for operation, kind, args in CASES:
        op = make_op(operation, kind, args)
        ir = op.update(None, None, 1)
        if kind == T.FLOAT:
            ir = op.update(ir, float("nan"), 1)
        assert ir is None and op.finalize(ir) is None, operation


def test_timed_ties_broken_by_value():
    last, first = make_op(O.LAST, T.STRING), make_op(O.FIRST, T.STRING)
    for order in (["b", "a", "c"], ["c", "b", "a"]):
        assert last.finalize(one_pass(last, [(5, v) for v in order])) == "c"
        assert first.finalize(one_pass(first, [(5, v) for v in order])) == "a"
    lk = make_op(O.LAST_K, T.INT, {"k": "2"})
    assert lk.finalize(one_pass(lk, [(1, 9), (2, 1), (2, 3), (0, 7)])) == [3, 1]
    fk = make_op(O.FIRST_K, T.INT, {"k": "3"})
    assert fk.finalize(one_pass(fk, [(1, 9), (2, 1), (2, 3), (0, 7)])) == [7, 9, 1]


def test_k_op_outputs_sorted():
    top, bottom = make_op(O.TOP_K, T.INT, {"k": "3"}), make_op(O.BOTTOM_K, T.INT, {"k": "3"})
    items = [(0, v) for v in [5, 1, 9, 3, 7, 9]]
    assert top.finalize(one_pass(top, items)) == [9, 9, 7]
    assert bottom.finalize(one_pass(bottom, items)) == [1, 3, 5]


def test_moments_outputs():
    var, skew, kurt = make_op(O.VARIANCE, T.FLOAT), make_op(O.SKEW, T.FLOAT), make_op(O.KURTOSIS, T.FLOAT)
    xs = [(0, x) for x in [1.0, 2.0, 3.0, 10.0]]
    assert math.isclose(var.finalize(one_pass(var, xs)), 12.5)
    # mean 4, deviations -3 -2 -1 6: m2 = 50, m3 = 180, m4 = 1394 (population statistics)
    assert math.isclose(skew.finalize(one_pass(skew, xs)), 2 * 180 / 50 ** 1.5)
    assert math.isclose(kurt.finalize(one_pass(kurt, xs)), 4 * 1394 / 50 ** 2 - 3)
    assert skew.finalize(one_pass(skew, xs[:2])) is None        # n < 3
    assert kurt.finalize(one_pass(kurt, xs[:3])) is None        # n < 4
    assert skew.finalize(one_pass(skew, [(0, 0.1)] * 5)) is None  # zero variance
    assert var.finalize(one_pass(var, [(0, 4.0)])) == 0.0


def test_histogram_top_k_and_zero_entries():
    h = make_op(O.HISTOGRAM, T.STRING, {"k": "2"})
    ir = one_pass(h, [(0, v) for v in "aabbbcd"])
    assert h.finalize(ir) == {"a": 2, "b": 3}
    ir = h.delete(ir, "c")
    assert "c" not in ir
    h0 = make_op(O.HISTOGRAM, T.BOOL)
    assert h0.finalize(one_pass(h0, [(0, True), (0, False), (0, True)])) == {"false": 1, "true": 2}


def test_invalid_arguments():
    with pytest.raises(ValueError):
        make_op(O.LAST_K, T.INT, None)           # k required
    with pytest.raises(ValueError):
        make_op(O.TOP_K, T.INT, {"k": "0"})
    with pytest.raises(ValueError):
        make_op(O.SUM, T.STRING)
    with pytest.raises(ValueError):
        make_op(O.APPROX_PERCENTILE, T.FLOAT, {"percentiles": "[1.5]"})
    with pytest.raises(ValueError):
        make_op(O.HISTOGRAM, T.FLOAT)
