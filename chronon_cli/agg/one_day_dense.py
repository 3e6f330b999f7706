"""One-date snapshots (``snapshot_one_day``), dense ops: SUM / COUNT / AVERAGE / MIN / MAX and the
other ops with numeric components, merged with the exact merge tree of ``snapshot.window_merges``
(power-of-two blocks) so results are identical to the general path. Rows in slot order with one
row per (slot, key) skip the (slot, key) grid (``_stream_merges``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List

import numpy as np
import pyarrow as pa

from chronon_cli.agg.codes import to_array
from chronon_cli.agg.ops import basic as B

if TYPE_CHECKING:
    from chronon_cli.agg.snapshot_one_day import _Rows


def _merge_plan(spans: Dict[int, int], t: int):
    """``window_merges``' merge tree for the single target ``t`` (power-of-two blocks ``B_j(c) =
    merge(B_{j-1}(c - 2^{j-1}), B_{j-1}(c))``, the identity before slot 0) as a list of steps.

    -> (steps, results): step k is ``merge(left, right)``, results[i] is span i's operand; operands
    are ("g", c) (grid slot c), ("id",) (the identity) or ("s", k) (step k's result)."""
    steps: list = []
    cache: dict = {}

    def block(j: int, c: int):
        if c < 0:
            return ("id",)
        if j == 0:
            return ("g", c)
        if (j, c) not in cache:
            half = 1 << (j - 1)
            left = block(j - 1, c - half)
            steps.append((left, block(j - 1, c)))
            cache[(j, c)] = ("s", len(steps) - 1)
        return cache[(j, c)]

    results = {}
    for i, span in spans.items():
        result, back, j = None, 0, 0
        while (1 << j) <= span:
            if span & (1 << j):
                piece = block(j, t - back)
                if result is not None:
                    steps.append((piece, result))
                    piece = ("s", len(steps) - 1)
                result = piece
                back += 1 << j
            j += 1
        results[i] = result
    return steps, results


def one_target_merges(op, grid, spans: Dict[int, int], t: int, n: int):
    """``window_merges`` for the single target ``t`` on a slot-major grid (component -> (slots,
    n)): {i: merged comps (n,)}, with the same merge tree."""
    steps, results = _merge_plan(spans, t)
    ident = op.d_identity()
    done: list = []

    def get(ref):
        if ref[0] == "g":
            return {name: a[ref[1]] for name, a in grid.items()}
        if ref[0] == "id":
            return {name: np.full(n, ident[name], dtype=a.dtype) for name, a in grid.items()}
        return done[ref[1]]

    for left, right in steps:
        done.append(op.d_merge(get(left), get(right)))
    return {i: get(ref) for i, ref in results.items()}


def _ufuncs(op):
    """Component -> the ufunc ``f`` for ops whose ``d_merge(a, b)`` is ``f(a[c], b[c])`` per
    component and whose ``d_group`` reduces each group with ``f`` from ``d_identity`` in row order
    (sums: ``bincount`` / ``add.at``; MIN / MAX: ``minimum.at`` / ``maximum.at``); None for other
    ops. A cell holding one row is then ``f(identity, row)``, and the merge tree can run on
    preallocated buffers with the same operations (``_tree_merges``)."""
    cls = type(op)
    if cls.d_merge is B._Additive.d_merge and cls.d_group is B._Additive.d_group:
        return {name: np.add for name in op.d_identity()}
    if cls.d_merge is B._Extreme.d_merge and cls.d_group is B._Extreme.d_group:
        return {"_n": np.add, "value": np.maximum if op.is_max else np.minimum}
    return None


class _ChunkComps:
    """A dense column's components chunk by chunk (``op.d_from_arrow`` of each chunk, on first use),
    for ops whose components are elementwise functions of the rows: the column is not
    concatenated, and each chunk's arrays are small."""

    def __init__(self, op, column):
        self.op = op
        self.chunks = [c for c in column.chunks if len(c)] if isinstance(column, pa.ChunkedArray) else [column]
        self.starts = np.zeros(len(self.chunks) + 1, dtype=np.int64)
        np.cumsum([len(c) for c in self.chunks], out=self.starts[1:])
        self._comps: Dict[int, dict] = {}
        self.codec = None

    def comps(self, c: int) -> dict:
        if c not in self._comps:
            self._comps[c], self.codec = self.op.d_from_arrow(self.chunks[c])
        return self._comps[c]

    def pieces(self, r0: int, r1: int):
        """-> [(a, b, {name: values of rows a:b})] covering rows ``r0:r1``."""
        out = []
        c = int(np.searchsorted(self.starts, r0, side="right")) - 1
        while r0 < r1:
            c0, c1 = int(self.starts[c]), int(self.starts[c + 1])
            end = min(r1, c1)
            out.append((r0, end, {name: a[r0 - c0:end - c0] for name, a in self.comps(c).items()}))
            r0, c = end, c + 1
        return out


def _chunk_comps(op, column, ufuncs):
    """``_ChunkComps`` of the column if the stream path can use it: components float64 / int64 and
    a codec that does not depend on the values (no string dictionary); else None."""
    if ufuncs is None or len(column) == 0:
        return None
    cc = _ChunkComps(op, column)
    first = cc.comps(0)
    if not set(first) <= set(ufuncs) or any(a.dtype != np.float64 and a.dtype != np.int64 for a in first.values()):
        return None
    if cc.codec is not None and getattr(cc.codec, "dictionary", None) is not None:
        return None
    return cc


def _stream_merges(ufuncs, ident, cc: _ChunkComps, rows: _Rows, spans: Dict[int, int]):
    """``one_target_merges`` for ``_ufuncs`` ops on rows in slot order with one row per (slot,
    key) (``_Rows.slot_runs``): {i: merged comps (n_keys,)}. Sums of int64 ones (exact in any
    order) are the windows' row counts; a component equal to the bit to one of an earlier column
    (SUM, COUNT and AVERAGE of one input) reuses its results; the others go through the tree."""
    out: Dict[int, dict] = {i: {} for i in spans}
    tree = []
    for name, a in cc.comps(0).items():
        f, identity = ufuncs[name], ident[name]
        if f is np.add and a.dtype == np.int64 and identity == 0 and all(
                _all_ones(cc.comps(c)[name]) for c in range(len(cc.chunks))):
            done = rows.window_counts(spans)
        else:
            done = rows.merged_like(f, identity, cc, name, spans)
        if done is None:
            tree.append(name)
        else:
            for i in spans:
                out[i][name] = done[i].copy()
    if tree:
        merged = _tree_merges(ufuncs, ident, cc, tree, rows, spans)
        for name in tree:
            rows.remember(ufuncs[name], ident[name], cc, name, {spans[i]: merged[i][name].copy() for i in spans})
            for i in spans:
                out[i][name] = merged[i][name]
    return out


def _tree_merges(ufuncs, ident, cc: _ChunkComps, names: List[str], rows: _Rows, spans: Dict[int, int]):
    """The merge tree of components ``names`` without the grid: each slot's grid row is built when
    a step first needs it, as ``d_group`` makes it (``f(identity, row)`` at the slot's keys, the
    identity elsewhere), from the chunks, and buffers go back to a pool after their last use, so
    the working set is a few (n_keys,) arrays that stay in cache."""
    n, key, bounds = rows.n_keys, rows.key, rows.slot_runs()
    comps = {name: cc.comps(0)[name] for name in names}
    steps, results = _merge_plan(spans, rows.target)
    last: dict = {}
    for k, (left, right) in enumerate(steps):
        last[left] = last[right] = k
    kept = set(results.values())
    pool: list = []
    values: dict = {}

    def fresh():
        return pool.pop() if pool else {name: np.empty(n, dtype=a.dtype) for name, a in comps.items()}

    def get(ref):
        if ref in values:
            return values[ref]
        if ref[0] == "id":
            v = {name: np.full(n, ident[name], dtype=a.dtype) for name, a in comps.items()}
        else:
            v = fresh()
            for name, a in comps.items():
                v[name].fill(ident[name])
            for a, b, part in cc.pieces(int(bounds[ref[1]]), int(bounds[ref[1] + 1])):
                for name in comps:
                    v[name][key[a:b]] = part[name]
            for name, a in comps.items():
                if a.dtype == np.float64:   # 0.0 + -0.0 is 0.0: apply f as the grouping does
                    ufuncs[name](a.dtype.type(ident[name]), v[name], out=v[name])
        values[ref] = v
        return v

    for k, (left, right) in enumerate(steps):
        a, b = get(left), get(right)
        out = fresh()
        for name in comps:
            ufuncs[name](a[name], b[name], out=out[name])
        values[("s", k)] = out
        for ref in {left, right}:
            if last[ref] == k and ref not in kept and ref[0] != "id":
                pool.append(values.pop(ref))
    return {i: get(ref) for i, ref in results.items()}


def _all_ones(a: np.ndarray) -> bool:
    return bool(len(a)) and (a.strides == (0,) and a[0] == 1 or bool((a == 1).all()))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal int64 / float64 arrays, to the bit (-0.0 is not 0.0, NaN payloads count)."""
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def _rows_of(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Rows ``pos`` of a component, keeping broadcast constants (``ones`` / ``zeros``) broadcast."""
    if a.ndim == 1 and a.strides == (0,) and len(a):
        return np.broadcast_to(a[0], (len(pos),))
    return a[pos]


def dense_columns(op, feats, column, rows: _Rows, spans):
    S_ = rows.n_slots
    ufuncs = _ufuncs(op)
    cc = _chunk_comps(op, column, ufuncs) if rows.slot_runs() is not None else None
    pieces: Dict[int, list] = {i: [] for i in spans}
    if cc is not None:
        merged = _stream_merges(ufuncs, op.d_identity(), cc, rows, spans)
        codec = cc.codec
        for i in spans:
            pieces[i].append(merged[i])
    else:
        comps, codec = op.d_from_arrow(to_array(column))
        for k0, k1, pos, cell in rows.cells():
            n = k1 - k0
            part = comps if pos is None else {name: _rows_of(a, pos) for name, a in comps.items()}
            grid = op.d_group(part, cell, S_ * n)
            grid = {name: a.reshape(S_, n) for name, a in grid.items()}
            merged = one_target_merges(op, grid, spans, rows.target, n)
            for i in spans:
                pieces[i].append(merged[i])
    values = {}
    for i, f in enumerate(feats):
        ps = pieces[i]
        merged = ps[0] if len(ps) == 1 else {name: np.concatenate([p[name] for p in ps]) for name in ps[0]}
        v, ok = f.op.d_finalize(merged)
        v, ok = v.reshape(-1), ok.reshape(-1)
        if f.op.coded_output:
            values[i] = (codec.decode(v, ok), ok)
        else:
            values[i] = (pa.array(v, mask=~ok, type=f.op.output_type), ok)
    return values
