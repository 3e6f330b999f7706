"""Nearest-name suggestions for error messages ("did you mean ...?")."""
import difflib
from typing import Iterable, Optional


def nearest(name: str, candidates: Iterable[str]) -> Optional[str]:
    """The closest candidate to ``name`` (case-insensitive), or None when nothing is close."""
    candidates = list(candidates)
    by_lower = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    match = nearest(name, candidates)
    return f" (did you mean '{match}'?)" if match else ""
