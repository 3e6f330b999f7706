"""Versioned binary encoding of IR rows (KV store values). Format in docs/agg.md.

    value   := version:u8  layout:u32be  n:varint  bitmap[ceil(n/8)]  column*
    column  := length:varint  bytes[length]          (only columns whose bit is set)

Bit ``i`` (LSB first within each byte) marks IR column ``i`` as non-null. ``layout`` is the first
4 bytes of SHA-256 of the IR layout description (column names and types), so bytes written for a
different GroupBy version are rejected instead of misread. Column bytes encode the IR's storage
value (the Arrow columnar form) by its Arrow type:

    bool: u8 0/1 | integers: zigzag varint | double: f64 little-endian
    string, binary: length:varint + bytes (UTF-8 for strings)
    list<T>: count:varint + items | map<string,V>: count:varint + (key, value)*
    struct: per field, u8 presence (0 null / 1 set) + the value when set
"""
from __future__ import annotations

import hashlib
import struct
from typing import Any, List, Mapping, Sequence, Tuple, Union

import pyarrow as pa
import pyarrow.types as pat

FORMAT_VERSION = 1

_F64 = struct.Struct("<d")


class IREncodingError(ValueError):
    """Bytes that cannot be decoded for this aggregator (version, layout or corruption)."""


# ------------------------------------------------------------------ primitives

def _put_varint(out: bytearray, n: int) -> None:
    if n < 0:
        raise ValueError("varint must be non-negative")
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _get_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise IREncodingError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise IREncodingError("varint too long")


def _zigzag(n: int) -> int:
    return (n << 1) if n >= 0 else ((-n) << 1) - 1


def _unzigzag(z: int) -> int:
    return (z >> 1) if not z & 1 else -((z + 1) >> 1)


def type_description(t: pa.DataType) -> str:
    """Stable textual form of an IR type (independent of pyarrow's own formatting)."""
    if pat.is_boolean(t):
        return "bool"
    if pat.is_integer(t):
        return "i64"
    if pat.is_floating(t):
        return "f64"
    if pat.is_string(t) or pat.is_large_string(t):
        return "str"
    if pat.is_binary(t) or pat.is_large_binary(t):
        return "bin"
    if pat.is_map(t):
        return f"map<{type_description(t.key_type)},{type_description(t.item_type)}>"
    if pat.is_list(t) or pat.is_large_list(t):
        return f"list<{type_description(t.value_type)}>"
    if pat.is_struct(t):
        return "struct<" + ",".join(f"{t.field(i).name}:{type_description(t.field(i).type)}" for i in range(t.num_fields)) + ">"
    raise ValueError(f"type {t} has no IR encoding")


def _encode_value(out: bytearray, t: pa.DataType, v: Any) -> None:
    if pat.is_boolean(t):
        out.append(1 if v else 0)
    elif pat.is_integer(t):
        _put_varint(out, _zigzag(int(v)))
    elif pat.is_floating(t):
        out += _F64.pack(float(v))
    elif pat.is_string(t) or pat.is_large_string(t):
        b = v.encode("utf-8")
        _put_varint(out, len(b))
        out += b
    elif pat.is_binary(t) or pat.is_large_binary(t):
        _put_varint(out, len(v))
        out += bytes(v)
    elif pat.is_map(t):
        items = list(v.items()) if isinstance(v, Mapping) else list(v)
        _put_varint(out, len(items))
        for key, item in items:
            _encode_value(out, t.key_type, key)
            if item is None:
                raise ValueError("null map values have no IR encoding")
            _encode_value(out, t.item_type, item)
    elif pat.is_list(t) or pat.is_large_list(t):
        _put_varint(out, len(v))
        for item in v:
            if item is None:
                raise ValueError("null list items have no IR encoding")
            _encode_value(out, t.value_type, item)
    elif pat.is_struct(t):
        for i in range(t.num_fields):
            f = t.field(i)
            fv = v.get(f.name)
            if fv is None:
                out.append(0)
            else:
                out.append(1)
                _encode_value(out, f.type, fv)
    else:
        raise ValueError(f"type {t} has no IR encoding")


def _decode_value(buf: bytes, pos: int, t: pa.DataType) -> Tuple[Any, int]:
    if pat.is_boolean(t):
        if pos >= len(buf):
            raise IREncodingError("truncated bool")
        return buf[pos] != 0, pos + 1
    if pat.is_integer(t):
        z, pos = _get_varint(buf, pos)
        return _unzigzag(z), pos
    if pat.is_floating(t):
        if pos + 8 > len(buf):
            raise IREncodingError("truncated double")
        return _F64.unpack_from(buf, pos)[0], pos + 8
    if pat.is_string(t) or pat.is_large_string(t) or pat.is_binary(t) or pat.is_large_binary(t):
        n, pos = _get_varint(buf, pos)
        if pos + n > len(buf):
            raise IREncodingError("truncated bytes")
        raw = bytes(buf[pos:pos + n])
        try:
            return (raw.decode("utf-8") if pat.is_string(t) or pat.is_large_string(t) else raw), pos + n
        except UnicodeDecodeError:
            raise IREncodingError("invalid UTF-8") from None
    if pat.is_map(t):
        n, pos = _get_varint(buf, pos)
        items = []
        for _ in range(n):
            key, pos = _decode_value(buf, pos, t.key_type)
            item, pos = _decode_value(buf, pos, t.item_type)
            items.append((key, item))
        return items, pos
    if pat.is_list(t) or pat.is_large_list(t):
        n, pos = _get_varint(buf, pos)
        items = []
        for _ in range(n):
            item, pos = _decode_value(buf, pos, t.value_type)
            items.append(item)
        return items, pos
    if pat.is_struct(t):
        out = {}
        for i in range(t.num_fields):
            f = t.field(i)
            if pos >= len(buf):
                raise IREncodingError("truncated struct")
            present = buf[pos]
            pos += 1
            if present:
                out[f.name], pos = _decode_value(buf, pos, f.type)
            else:
                out[f.name] = None
        return out, pos
    raise IREncodingError(f"type {t} has no IR encoding")


# ------------------------------------------------------------------ rows

def layout_description(agg) -> str:
    return f"v{FORMAT_VERSION}|" + ";".join(f"{c.name}:{type_description(c.ir_type)}" for c in agg.columns)


def layout_fingerprint(agg) -> int:
    return int.from_bytes(hashlib.sha256(layout_description(agg).encode("utf-8")).digest()[:4], "big")


def _row_list(agg, ir_row: Union[Sequence[Any], Mapping[str, Any]]) -> List[Any]:
    if isinstance(ir_row, Mapping):
        unknown = set(ir_row) - set(agg.ir_columns)
        if unknown:
            raise ValueError(f"unknown IR columns: {sorted(unknown)}")
        return [ir_row.get(name) for name in agg.ir_columns]
    row = list(ir_row)
    if len(row) != len(agg.columns):
        raise ValueError(f"IR row has {len(row)} values, the aggregator has {len(agg.columns)} IR columns")
    return row


def encode_storage(agg, values: Sequence[Any]) -> bytes:
    """Encode storage values (the columnar Python form, one per IR column)."""
    values = list(values)
    n = len(agg.columns)
    if len(values) != n:
        raise ValueError(f"expected {n} IR values, got {len(values)}")
    out = bytearray([FORMAT_VERSION])
    out += layout_fingerprint(agg).to_bytes(4, "big")
    _put_varint(out, n)
    bitmap = bytearray((n + 7) // 8)
    for i, v in enumerate(values):
        if v is not None:
            bitmap[i // 8] |= 1 << (i % 8)
    out += bitmap
    for c, v in zip(agg.columns, values):
        if v is None:
            continue
        body = bytearray()
        _encode_value(body, c.ir_type, v)
        _put_varint(out, len(body))
        out += body
    return bytes(out)


def decode_storage(agg, data: bytes) -> List[Any]:
    """Decode to storage values (the columnar Python form)."""
    buf = bytes(data)
    if not buf:
        raise IREncodingError("empty IR value")
    if buf[0] != FORMAT_VERSION:
        raise IREncodingError(f"unsupported IR encoding version {buf[0]} (this build reads {FORMAT_VERSION})")
    if len(buf) < 5:
        raise IREncodingError("truncated header")
    if int.from_bytes(buf[1:5], "big") != layout_fingerprint(agg):
        raise IREncodingError("IR value was written for a different IR layout (GroupBy changed?)")
    n, pos = _get_varint(buf, 5)
    if n != len(agg.columns):
        raise IREncodingError(f"IR value has {n} columns, expected {len(agg.columns)}")
    nbytes = (n + 7) // 8
    bitmap = buf[pos:pos + nbytes]
    if len(bitmap) != nbytes:
        raise IREncodingError("truncated bitmap")
    pos += nbytes
    values: List[Any] = []
    for i, c in enumerate(agg.columns):
        if not bitmap[i // 8] & (1 << (i % 8)):
            values.append(None)
            continue
        length, pos = _get_varint(buf, pos)
        end = pos + length
        if end > len(buf):
            raise IREncodingError("truncated column")
        value, used = _decode_value(buf[:end], pos, c.ir_type)
        if used != end:
            raise IREncodingError(f"column {c.name}: {end - used} unread bytes")
        values.append(value)
        pos = end
    if pos != len(buf):
        raise IREncodingError(f"{len(buf) - pos} trailing bytes")
    return values


def encode(agg, ir_row: Union[Sequence[Any], Mapping[str, Any]]) -> bytes:
    """IR row (Python IRs aligned with ``agg.ir_columns``, or a dict by IR column name) -> bytes."""
    row = _row_list(agg, ir_row)
    return encode_storage(agg, [c.to_storage(x) for c, x in zip(agg.columns, row)])


def decode(agg, data: bytes) -> List[Any]:
    """bytes -> IR row (Python IRs aligned with ``agg.ir_columns``)."""
    return [c.from_storage(v) for c, v in zip(agg.columns, decode_storage(agg, data))]
