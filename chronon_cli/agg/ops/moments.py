"""VARIANCE (Welford / Chan) and SKEW, KURTOSIS (central moments, Pebay's parallel merge).

IRs hold the count, the mean and the central sums ``m2 = sum((x - mean)^2)`` (and ``m3``, ``m4``),
which merge stably. Outputs are population statistics: variance ``m2/n``; skew
``sqrt(n) m3 / m2^1.5`` (null if n < 3); excess kurtosis ``n m4 / m2^2 - 3`` (null if n < 4).
Skew and kurtosis are null when the variance is zero up to rounding: ``sqrt(m2/n) <= 1e-9 |mean|``.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from chronon_cli.agg import types as T
from chronon_cli.agg.ops.base import (
    Op, clean_float, field_numpy, float_array, gsum, is_ones, is_zeros, ones, safe_div, skip, struct_array, zeros,
)

NUMERIC = (T.INT, T.FLOAT, T.BOOL)
ZERO_VARIANCE_REL = 1e-9


def degenerate(n, mean, m2) -> bool:
    """True when the spread is zero up to rounding (skew and kurtosis are then undefined)."""
    return m2 <= 0 or math.sqrt(m2 / n) <= ZERO_VARIANCE_REL * abs(mean)


class Variance(Op):
    """IR: struct<count, mean, m2>. Output: population variance (double)."""

    name = "variance"
    dense = True
    kinds = NUMERIC
    ir_type = pa.struct([("count", pa.int64()), ("mean", pa.float64()), ("m2", pa.float64())])
    output_type = pa.float64()

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        x = float(value)
        if ir is None:
            return (1, x, 0.0)
        n, mean, m2 = ir
        n += 1
        d = x - mean
        mean += d / n
        return (n, mean, m2 + d * (x - mean))

    def merge(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        na, ma, m2a = a
        nb, mb, m2b = b
        n = na + nb
        d = mb - ma
        return (n, ma + d * nb / n, m2a + m2b + d * d * na * nb / n)

    def finalize(self, ir):
        if ir is None or ir[0] <= 0:
            return None
        return clean_float(ir[2] / ir[0])

    def to_storage(self, ir):
        return None if ir is None else {"count": ir[0], "mean": ir[1], "m2": ir[2]}

    def from_storage(self, v):
        return None if v is None else (v["count"], v["mean"], v["m2"])

    # vectorized
    def d_identity(self):
        return {"_n": 0, "mean": 0.0, "m2": 0.0}

    def d_rows(self, v, ts=None):
        return {"_n": ones(len(v)), "mean": v.astype(np.float64, copy=False), "m2": zeros(len(v))}

    def d_group(self, c, g, size):
        if is_ones(c["_n"]) and is_zeros(c["m2"]):  # raw rows: the two-pass algorithm
            n = np.bincount(g, minlength=size)
            mean = safe_div(np.bincount(g, weights=c["mean"], minlength=size), n)
            d = c["mean"] - np.take(mean, g)
            d *= d
            return {"_n": n.astype(np.int64, copy=False), "mean": mean, "m2": np.bincount(g, weights=d, minlength=size)}
        n = gsum(c["_n"], g, size)
        mean = safe_div(gsum(c["_n"] * c["mean"], g, size), n)
        d = c["mean"] - mean[g]
        return {"_n": n, "mean": mean, "m2": gsum(c["m2"] + c["_n"] * d * d, g, size)}

    def d_merge(self, a, b):
        na, nb = a["_n"], b["_n"]
        n = na + nb
        d = b["mean"] - a["mean"]
        dn = safe_div(d, n)
        return {"_n": n, "mean": a["mean"] + nb * dn, "m2": a["m2"] + b["m2"] + d * dn * na * nb}

    def d_finalize(self, c):
        var = safe_div(c["m2"], c["_n"])
        return var, (c["_n"] > 0) & np.isfinite(var)

    def d_to_arrow(self, c, codec=None):
        valid = c["_n"] > 0
        return struct_array(
            [
                ("count", pa.array(c["_n"], mask=~valid, type=pa.int64())),
                ("mean", float_array(c["mean"], valid)),
                ("m2", float_array(c["m2"], valid)),
            ],
            valid,
        )

    def d_from_arrow(self, arr):
        return {
            "_n": field_numpy(arr, "count", 0, np.int64),
            "mean": field_numpy(arr, "mean", 0.0, np.float64),
            "m2": field_numpy(arr, "m2", 0.0, np.float64),
        }, None


class _Moments(Op):
    """IR: struct<count, mean, m2, m3, m4> (central sums)."""

    dense = True
    kinds = NUMERIC
    ir_type = pa.struct(
        [("count", pa.int64()), ("mean", pa.float64()), ("m2", pa.float64()), ("m3", pa.float64()), ("m4", pa.float64())]
    )
    output_type = pa.float64()

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        return self.merge(ir, (1, float(value), 0.0, 0.0, 0.0))

    def merge(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        na, ma, m2a, m3a, m4a = a
        nb, mb, m2b, m3b, m4b = b
        n = na + nb
        d = mb - ma
        dn = d / n
        dn2 = dn * dn
        mean = ma + nb * dn
        m2 = m2a + m2b + d * dn * na * nb
        m3 = m3a + m3b + d * dn2 * na * nb * (na - nb) + 3.0 * dn * (na * m2b - nb * m2a)
        m4 = (
            m4a + m4b + d * dn2 * dn * na * nb * (na * na - na * nb + nb * nb)
            + 6.0 * dn2 * (na * na * m2b + nb * nb * m2a) + 4.0 * dn * (na * m3b - nb * m3a)
        )
        return (n, mean, m2, m3, m4)

    def to_storage(self, ir):
        if ir is None:
            return None
        return {"count": ir[0], "mean": ir[1], "m2": ir[2], "m3": ir[3], "m4": ir[4]}

    def from_storage(self, v):
        return None if v is None else (v["count"], v["mean"], v["m2"], v["m3"], v["m4"])

    def d_identity(self):
        return {"_n": 0, "mean": 0.0, "m2": 0.0, "m3": 0.0, "m4": 0.0}

    def d_rows(self, v, ts=None):
        z = zeros(len(v))
        return {"_n": ones(len(v)), "mean": v.astype(np.float64, copy=False), "m2": z, "m3": z, "m4": z}

    def d_group(self, c, g, size):
        if is_ones(c["_n"]) and is_zeros(c["m2"]):  # raw rows: central sums of deviations
            n = np.bincount(g, minlength=size)
            mean = safe_div(np.bincount(g, weights=c["mean"], minlength=size), n)
            d = c["mean"] - mean[g]
            d2 = d * d
            return {
                "_n": n.astype(np.int64, copy=False), "mean": mean,
                "m2": np.bincount(g, weights=d2, minlength=size),
                "m3": np.bincount(g, weights=d2 * d, minlength=size),
                "m4": np.bincount(g, weights=d2 * d2, minlength=size),
            }
        n = gsum(c["_n"], g, size)
        mean = safe_div(gsum(c["_n"] * c["mean"], g, size), n)
        d = c["mean"] - mean[g]
        d2 = d * d
        ni = c["_n"]
        return {
            "_n": n,
            "mean": mean,
            "m2": gsum(c["m2"] + ni * d2, g, size),
            "m3": gsum(c["m3"] + 3.0 * d * c["m2"] + ni * d2 * d, g, size),
            "m4": gsum(c["m4"] + 4.0 * d * c["m3"] + 6.0 * d2 * c["m2"] + ni * d2 * d2, g, size),
        }

    def d_merge(self, a, b):
        na, nb = a["_n"].astype(np.float64), b["_n"].astype(np.float64)
        n = na + nb
        d = b["mean"] - a["mean"]
        dn = safe_div(d, n)
        dn2 = dn * dn
        return {
            "_n": a["_n"] + b["_n"],
            "mean": a["mean"] + nb * dn,
            "m2": a["m2"] + b["m2"] + d * dn * na * nb,
            "m3": a["m3"] + b["m3"] + d * dn2 * na * nb * (na - nb) + 3.0 * dn * (na * b["m2"] - nb * a["m2"]),
            "m4": (
                a["m4"] + b["m4"] + d * dn2 * dn * na * nb * (na * na - na * nb + nb * nb)
                + 6.0 * dn2 * (na * na * b["m2"] + nb * nb * a["m2"]) + 4.0 * dn * (na * b["m3"] - nb * a["m3"])
            ),
        }

    def d_to_arrow(self, c, codec=None):
        valid = c["_n"] > 0
        fields = [("count", pa.array(c["_n"], mask=~valid, type=pa.int64()))]
        fields += [(k, float_array(c[k], valid)) for k in ("mean", "m2", "m3", "m4")]
        return struct_array(fields, valid)

    def d_from_arrow(self, arr):
        comps = {"_n": field_numpy(arr, "count", 0, np.int64)}
        for k in ("mean", "m2", "m3", "m4"):
            comps[k] = field_numpy(arr, k, 0.0, np.float64)
        return comps, None

    def _degenerate_mask(self, c):
        n = c["_n"]
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.sqrt(np.where(n > 0, c["m2"] / np.where(n > 0, n, 1), 0.0))
        return (c["m2"] <= 0) | (spread <= ZERO_VARIANCE_REL * np.abs(c["mean"]))


class Skew(_Moments):
    name = "skew"

    def finalize(self, ir):
        if ir is None or ir[0] < 3 or degenerate(ir[0], ir[1], ir[2]):
            return None
        n, _, m2, m3, _ = ir
        return clean_float(math.sqrt(n) * m3 / m2 ** 1.5)

    def d_finalize(self, c):
        n = c["_n"].astype(np.float64)
        ok = (c["_n"] >= 3) & ~self._degenerate_mask(c)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(ok, np.sqrt(n) * c["m3"] / np.where(ok, c["m2"], 1.0) ** 1.5, 0.0)
        return v, ok & np.isfinite(v)


class Kurtosis(_Moments):
    name = "kurtosis"

    def finalize(self, ir):
        if ir is None or ir[0] < 4 or degenerate(ir[0], ir[1], ir[2]):
            return None
        n, _, m2, _, m4 = ir
        return clean_float(n * m4 / (m2 * m2) - 3.0)

    def d_finalize(self, c):
        n = c["_n"].astype(np.float64)
        ok = (c["_n"] >= 4) & ~self._degenerate_mask(c)
        with np.errstate(divide="ignore", invalid="ignore"):
            m2 = np.where(ok, c["m2"], 1.0)
            v = np.where(ok, n * c["m4"] / (m2 * m2) - 3.0, 0.0)
        return v, ok & np.isfinite(v)
