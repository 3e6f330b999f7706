"""Staging-query setup statements, adapted to this Spark (no s3a, no Hive).

``CREATE [OR REPLACE] TEMPORARY VIEW v USING parquet OPTIONS (path 's3a://B/K')`` is rewritten to
read through the profile's ObjectStore with the chronon parquet data source (after checking that
the object exists: a missing one is a JobError naming the URI). With a local object store and
``native_local`` (the profile's ``spark.native_local_io``, default on), the view is left to Spark's
own parquet reader on the mapped local path instead, which is faster. Temporary views are created
``OR REPLACE`` so that setups can run again for every chunk, as Chronon runs them per step.
"""
import re
from typing import Any, Dict, List, Tuple

from chronon_cli.errors import JobError
from chronon_cli.storage import S3_SCHEMES

_VIEW_USING = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?P<glob>GLOBAL\s+)?(?:TEMPORARY|TEMP)\s+VIEW\s+"
    r"(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>`[^`]+`|[\w.]+)\s*(?P<cols>\([^()]*\)\s*)?"
    r"USING\s+(?P<fmt>[\w.]+)\s*(?:OPTIONS\s*\((?P<opts>.*)\))?\s*;?\s*$", re.I | re.S)
_TEMP_VIEW = re.compile(r"^(\s*CREATE\s+)(?!OR\s)((?:GLOBAL\s+)?(?:TEMPORARY|TEMP)\s+VIEW\s+)(?!IF\s)", re.I)
_OPTION = re.compile(
    r"\s*(?P<key>`[^`]+`|'[^']+'|\"[^\"]+\"|[\w.]+)\s*=?\s*"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^,\s]+)\s*(?:,|$)", re.S)


def parse_options(text: str) -> Dict[str, str]:
    """``path 'x', 'k' = "v"`` -> ``{"path": "x", "k": "v"}`` (keys lower-cased)."""
    out: Dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _OPTION.match(text, pos)
        if not m or m.end() == pos:
            raise JobError(f"cannot parse OPTIONS ({text})")
        key = m.group("key").strip("`'\"").lower()
        value = m.group("value")
        if value[:1] in "'\"":
            value = value[1:-1].replace("\\'", "'").replace('\\"', '"')
        out[key] = value
        pos = m.end()
    return out


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def rewrite_setup(statement: str, store: Any, parquet_source: str, min_splits: int = 1,
                  native_local: bool = False) -> Tuple[str, List[str]]:
    """The statement to run instead of ``statement``, and the object URIs it reads."""
    m = _VIEW_USING.match(statement)
    if not m:
        return _TEMP_VIEW.sub(r"\1OR REPLACE \2", statement, count=1), []
    options = parse_options(m.group("opts") or "")
    path = options.get("path", "")
    if not path.startswith(S3_SCHEMES):
        return _TEMP_VIEW.sub(r"\1OR REPLACE \2", statement, count=1), []
    fmt = m.group("fmt").lower()
    if fmt != "parquet":
        raise JobError(f"cannot read {path} as {fmt}: only parquet objects are read from S3 here",
                       hint="convert the object to parquet")
    store.require(path)
    glob = "GLOBAL " if m.group("glob") else ""
    cols = m.group("cols") or ""
    if native_local and type(store).__name__ == "LocalObjectStore":
        local = store.resolve(path)[1]
        return (f"CREATE OR REPLACE {glob}TEMPORARY VIEW {m.group('name')} {cols}USING parquet "
                f"OPTIONS (path {_quote('file://' + local)})"), [path]
    rewritten = (f"CREATE OR REPLACE {glob}TEMPORARY VIEW {m.group('name')} {cols}USING {parquet_source} "
                 f"OPTIONS (path {_quote(path)}, min_splits '{int(min_splits)}')")
    return rewritten, [path]
