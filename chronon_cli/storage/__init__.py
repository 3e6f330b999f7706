"""Storage interfaces: an object store (S3 or its local stand-in) and the Iceberg catalog.

Backends are chosen by name from the profile and imported lazily:

- ``object_store(settings)``: ``settings.s3["type"]`` is ``local`` (``s3://B/K`` and ``s3a://B/K``
  map to ``<root>/B/K``, root defaulting to ``$CHRONON_HOME/s3``) or ``s3`` (the S3 protocol through
  pyarrow's ``S3FileSystem``; endpoint and credentials from the profile, else the environment).
- ``catalog(settings)``: ``settings.catalog["type"]`` is ``sql`` (pyiceberg's SQL catalog, SQLite by
  default, local or ``s3://`` warehouse) or ``rest``.

An ``ObjectStore`` turns URIs into ``(pyarrow.fs.FileSystem, path)``. Its ``spec()`` is a small
picklable dict from which ``store_from_spec`` rebuilds the store inside Spark tasks; the dict masks
its secrets when printed, and nothing in this package logs it.
"""
import os
from abc import ABC, abstractmethod
from typing import Any, Dict, Iterable, List, Optional, Tuple

from chronon_cli.errors import ConfigError, JobError

S3_SCHEMES = ("s3://", "s3a://", "s3n://")
_SECRET_WORDS = ("secret", "password", "token", "key")


class Spec(dict):
    """A plain dict (picklable, JSON-able) whose repr/str masks secret values."""

    def __repr__(self) -> str:
        shown = {k: ("***" if any(w in k.lower() for w in _SECRET_WORDS) and v else v) for k, v in self.items()}
        return f"Spec({shown!r})"

    __str__ = __repr__


def split_s3_uri(uri: str) -> Optional[Tuple[str, str]]:
    """``s3a://bucket/key`` -> ``("bucket", "key")``; None for a URI of another scheme."""
    for scheme in S3_SCHEMES:
        if uri.startswith(scheme):
            rest = uri[len(scheme):]
            bucket, _, key = rest.partition("/")
            if not bucket:
                raise ConfigError(f"S3 URI without a bucket: {uri}")
            return bucket, key.strip("/")
    return None


def local_path(uri: str) -> Optional[str]:
    """``file:///x`` or a plain path -> an absolute local path; None for other schemes."""
    if uri.startswith("file://"):
        return os.path.abspath(uri[len("file://"):] or "/")
    if "://" in uri:
        return None
    return os.path.abspath(os.path.expanduser(uri))


class ObjectStore(ABC):
    """Files addressed by URI: ``s3://``/``s3a://`` objects and local paths."""

    @abstractmethod
    def resolve(self, uri: str) -> Tuple[Any, str]:
        """``(pyarrow.fs.FileSystem, path)`` for ``uri`` (an S3 URI, ``file://`` URI or local path)."""

    @abstractmethod
    def spec(self) -> Spec:
        """A picklable description from which ``store_from_spec`` rebuilds this store (in tasks)."""

    def exists(self, uri: str) -> bool:
        import pyarrow.fs as pafs

        fs, path = self.resolve(uri)
        return fs.get_file_info(path).type != pafs.FileType.NotFound

    def require(self, uri: str) -> None:
        """Raise a JobError naming ``uri`` when nothing exists there."""
        try:
            found = self.exists(uri)
        except OSError as exc:
            raise JobError(f"cannot reach {uri}: {exc}") from None
        if not found:
            raise JobError(f"no such object: {uri}", hint="check the path; for the bootcamp data run "
                           "`python run.py --mode=sample-data` first")

    def list_files(self, uri: str, suffix: str = "") -> List[str]:
        """The files at ``uri``: itself if it is a file, else every file below it (skipping ``_*`` and ``.*``)."""
        import pyarrow.fs as pafs

        fs, path = self.resolve(uri)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [path]
        if info.type == pafs.FileType.NotFound:
            raise JobError(f"no such object: {uri}")
        found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        files = []
        for f in found:
            parts = f.path[len(path):].strip("/").split("/")
            if f.type == pafs.FileType.File and f.path.endswith(suffix) and not any(
                    p.startswith(("_", ".")) for p in parts):
                files.append(f.path)
        return sorted(files)

    def write_bytes(self, uri: str, data: bytes) -> None:
        fs, path = self.resolve(uri)
        self.ensure_parent(fs, path)
        with fs.open_output_stream(path) as out:
            out.write(data)

    def read_bytes(self, uri: str) -> bytes:
        fs, path = self.resolve(uri)
        with fs.open_input_stream(path) as f:
            return f.read()

    def ensure_parent(self, fs: Any, path: str) -> None:
        parent = path.rsplit("/", 1)[0]
        if parent and parent != path:
            fs.create_dir(parent, recursive=True)

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if missing (the sample-data command only)."""

    def delete(self, uris: Iterable[str]) -> None:
        for uri in uris:
            fs, path = self.resolve(uri)
            try:
                fs.delete_file(path)
            except (OSError, FileNotFoundError):
                pass


def store_from_spec(spec: Dict[str, Any]) -> ObjectStore:
    """Rebuild an ObjectStore from ``ObjectStore.spec()`` (cached per process, for Spark tasks)."""
    key = tuple(sorted((k, str(v)) for k, v in spec.items()))
    store = _STORES.get(key)
    if store is None:
        kind = spec.get("type", "local")
        if kind == "local":
            from chronon_cli.storage.local import LocalObjectStore

            store = LocalObjectStore(spec.get("root"))
        elif kind == "s3":
            from chronon_cli.storage.s3 import S3ObjectStore

            store = S3ObjectStore(dict(spec))
        else:
            raise ConfigError(f"unknown object store type '{kind}' (known: local, s3)", field="s3.type")
        _STORES[key] = store
    return store


_STORES: Dict[tuple, ObjectStore] = {}


def object_store(settings: Any) -> ObjectStore:
    """The profile's object store (``settings.s3``)."""
    conf = dict(settings.s3 or {})
    kind = conf.get("type", "local")
    if kind == "local":
        root = conf.get("root") or os.path.join(str(settings.home), "s3")
        return store_from_spec(Spec(type="local", root=os.path.abspath(root)))
    if kind == "s3":
        from chronon_cli.storage.s3 import s3_spec

        return store_from_spec(s3_spec(conf))
    raise ConfigError(f"unknown object store type '{kind}' (known: local, s3)", file=str(settings.path), field="s3.type")


def warehouse_store(settings: Any) -> ObjectStore:
    """The store holding the Iceberg warehouse's files (tables' data and metadata).

    A ``file://`` warehouse is local; an ``s3://`` warehouse uses the catalog's ``s3.*`` properties
    (the keys pyiceberg's FileIO reads), falling back to the profile's S3 section, then the environment.
    """
    from chronon_cli.storage.iceberg import catalog_properties

    fallback = dict(settings.s3 or {}) if (settings.s3 or {}).get("type") == "s3" else {}
    return warehouse_store_from_properties(catalog_properties(settings), fallback)


def warehouse_store_from_properties(props: Dict[str, Any], fallback: Optional[Dict[str, Any]] = None) -> ObjectStore:
    """The warehouse store for pyiceberg catalog/FileIO properties (``s3.endpoint``, ``s3.access-key-id``...)."""
    fallback = fallback or {}
    warehouse = str(props.get("warehouse") or "")
    has_s3 = warehouse.startswith(S3_SCHEMES) or any(str(k).startswith("s3.") for k in props)
    if not has_s3 and not fallback:
        return store_from_spec(Spec(type="local", root=os.path.abspath(os.sep)))
    from chronon_cli.storage.s3 import s3_spec

    merged = {
        "endpoint": props.get("s3.endpoint", fallback.get("endpoint")),
        "access_key_id": props.get("s3.access-key-id", fallback.get("access_key_id")),
        "secret_access_key": props.get("s3.secret-access-key", fallback.get("secret_access_key")),
        "session_token": props.get("s3.session-token", fallback.get("session_token")),
        "region": props.get("s3.region", fallback.get("region")),
    }
    return store_from_spec(s3_spec(merged))


def warehouse_store_for_catalog(cat: Any) -> ObjectStore:
    """The warehouse store of a loaded pyiceberg catalog (its merged properties)."""
    return warehouse_store_from_properties(dict(getattr(cat, "properties", {}) or {}))


def catalog(settings: Any):
    """The profile's pyiceberg Catalog (``settings.catalog``), cached per process."""
    from chronon_cli.storage.iceberg import load_catalog

    return load_catalog(settings)


__all__ = ["ObjectStore", "Spec", "object_store", "warehouse_store", "warehouse_store_from_properties",
           "warehouse_store_for_catalog", "store_from_spec", "catalog",
           "split_s3_uri", "local_path", "S3_SCHEMES"]
