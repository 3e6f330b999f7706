"""The local stand-in for S3: ``s3://BUCKET/KEY`` and ``s3a://BUCKET/KEY`` are ``<root>/BUCKET/KEY``."""
import os
from typing import Any, Optional, Tuple

from chronon_cli.errors import ConfigError
from chronon_cli.storage import ObjectStore, Spec, local_path, split_s3_uri


class LocalObjectStore(ObjectStore):
    def __init__(self, root: Optional[str]):
        if not root:
            raise ConfigError("the local object store needs a root folder", field="s3.root")
        self.root = os.path.abspath(root)
        import pyarrow.fs as pafs

        self._fs = pafs.LocalFileSystem()

    def resolve(self, uri: str) -> Tuple[Any, str]:
        s3 = split_s3_uri(uri)
        if s3 is not None:
            bucket, key = s3
            return self._fs, os.path.join(self.root, bucket, key) if key else os.path.join(self.root, bucket)
        path = local_path(uri)
        if path is None:
            raise ConfigError(f"unsupported URI {uri}: the local object store reads s3://, s3a://, file:// and paths")
        return self._fs, path

    def spec(self) -> Spec:
        return Spec(type="local", root=self.root)

    def ensure_bucket(self, bucket: str) -> None:
        os.makedirs(os.path.join(self.root, bucket), exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalObjectStore(root={self.root!r})"
