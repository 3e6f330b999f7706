"""Bounded sorted lists: the IR of the k-ops (TOP_K/BOTTOM_K over values, FIRST_K/LAST_K over (ts, value)).

The list is kept ascending; ``keep_largest`` keeps the k largest items, otherwise the k smallest.
"""
import bisect
import heapq
from typing import Any, List, Optional


def insert(ir: Optional[List[Any]], item: Any, k: int, keep_largest: bool) -> List[Any]:
    """Add ``item`` to the bounded list ``ir`` (updated in place; a new list when ``ir`` is None)."""
    if ir is None:
        return [item]
    if len(ir) < k:
        bisect.insort(ir, item)
    elif keep_largest and item > ir[0]:
        bisect.insort(ir, item)
        ir.pop(0)
    elif not keep_largest and item < ir[-1]:
        bisect.insort(ir, item)
        ir.pop()
    return ir


def merge(a: Optional[List[Any]], b: Optional[List[Any]], k: int, keep_largest: bool) -> Optional[List[Any]]:
    """The bounded list of the union of ``a`` and ``b``."""
    if a is None:
        return None if b is None else list(b)
    if b is None:
        return a
    merged = list(heapq.merge(a, b))
    return merged[-k:] if keep_largest else merged[:k]
