"""Write compiled JSON: deterministic, round-trip checked, and guarded for online objects."""
import json
import os
import tempfile
from pathlib import Path
from typing import Optional

from chronon_cli.errors import ConfigError
from chronon_cli.spec import codec


def render(obj) -> str:
    """The compiled JSON of ``obj``, verified by a round trip (write, read back, write again, compare)."""
    text = codec.to_json(obj)
    again = codec.to_json(codec.from_json(type(obj), text))
    if again != text:
        raise ConfigError("compiled JSON does not survive a round trip (this is a bug in chronon-cli)",
                          obj=obj.metaData.name)
    return text


def online_change(path: Path, new_text: str) -> Optional[str]:
    """Why writing ``new_text`` over an existing online object is refused, or None when it is allowed."""
    if not path.exists():
        return None
    old_text = path.read_text()
    if old_text == new_text:
        return None
    try:
        old = json.loads(old_text)
    except ValueError:
        return None
    if (old.get("metaData") or {}).get("online"):
        return (f"{path} is an online object and its definition changed; bump the version "
                "(e.g. a new variable v2 or version=2) instead of changing it in place")
    return None


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
