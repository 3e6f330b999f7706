"""JSON codec for the compiled model, in the shape of Chronon's compiled JSON.

camelCase fields, enums as their thrift numbers, unset (None) fields omitted, keys sorted and a fixed
indent so output is deterministic. Every document carries ``FORMAT_KEY`` (the format version of this
tool's compiled files); reading a different version is refused rather than guessed at.
"""
import dataclasses
import json
from typing import Any, Dict, Type, TypeVar

from chronon_cli.spec import ttypes

FORMAT_VERSION = 1
FORMAT_KEY = "chrononCliFormatVersion"
KINDS = {"group_bys": ttypes.GroupBy, "staging_queries": ttypes.StagingQuery, "joins": ttypes.Join}

T = TypeVar("T")


class CodecError(ValueError):
    pass


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is not None:
                out[f.name] = _encode(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def to_json_dict(obj: Any) -> Dict[str, Any]:
    """The compiled document of ``obj`` (a GroupBy, StagingQuery or Join)."""
    doc = _encode(obj)
    doc[FORMAT_KEY] = FORMAT_VERSION
    return doc


def to_json(obj: Any) -> str:
    return json.dumps(to_json_dict(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _decode(cls: Type[T], data: Dict[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise CodecError(f"unknown field '{key}' for {cls.__name__}")
        nested = ttypes.NESTED_TYPES.get((cls, key))
        if isinstance(nested, list):
            value = [_decode(nested[0], v) for v in value]
        elif nested is not None:
            value = _decode(nested, value)
        kwargs[key] = value
    return cls(**kwargs)


def from_json_dict(cls: Type[T], doc: Dict[str, Any]) -> T:
    doc = dict(doc)
    version = doc.pop(FORMAT_KEY, None)
    if version != FORMAT_VERSION:
        raise CodecError(
            f"compiled format version {version!r} is not {FORMAT_VERSION}: recompile with this chronon-cli"
        )
    return _decode(cls, doc)


def from_json(cls: Type[T], text: str) -> T:
    return from_json_dict(cls, json.loads(text))
