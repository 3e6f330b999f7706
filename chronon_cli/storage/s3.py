"""The S3 protocol (AWS, MinIO, moto) through pyarrow's S3FileSystem.

Profile keys (section ``s3``): ``endpoint`` (e.g. ``http://127.0.0.1:9000``; empty for AWS),
``access_key_id``, ``secret_access_key``, ``session_token``, ``region``. Unset credentials fall back
to ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` / ``AWS_REGION`` from the
environment, then to pyarrow's default AWS credential chain. Credentials are never printed.
"""
import os
from typing import Any, Dict, Optional, Tuple

from chronon_cli.errors import ConfigError
from chronon_cli.storage import ObjectStore, Spec, local_path, split_s3_uri


def s3_spec(conf: Dict[str, Any]) -> Spec:
    """Resolve profile keys plus environment into a spec (credentials included: keep it private)."""
    def pick(key: str, env: str) -> Optional[str]:
        value = conf.get(key)
        if value in (None, ""):
            value = os.environ.get(env)
        return str(value) if value not in (None, "") else None

    endpoint = conf.get("endpoint") or os.environ.get("S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    spec = Spec(type="s3", endpoint=str(endpoint) if endpoint else None,
                access_key_id=pick("access_key_id", "AWS_ACCESS_KEY_ID"),
                secret_access_key=pick("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                session_token=pick("session_token", "AWS_SESSION_TOKEN"),
                region=pick("region", "AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    return Spec({k: v for k, v in spec.items() if v is not None})


def _split_endpoint(endpoint: str) -> Tuple[str, str]:
    if endpoint.startswith("https://"):
        return "https", endpoint[len("https://"):].rstrip("/")
    if endpoint.startswith("http://"):
        return "http", endpoint[len("http://"):].rstrip("/")
    return "https", endpoint.rstrip("/")


class S3ObjectStore(ObjectStore):
    def __init__(self, spec: Dict[str, Any]):
        try:
            import pyarrow.fs as pafs
        except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
            raise ConfigError("the s3 object store needs pyarrow: pip install 'chronon-cli'") from exc
        self._spec = Spec(spec)
        self._pafs = pafs
        self._fs = pafs.S3FileSystem(**self._fs_kwargs())
        self._local = pafs.LocalFileSystem()

    def _fs_kwargs(self) -> Dict[str, Any]:
        s = self._spec
        kwargs: Dict[str, Any] = {"region": s.get("region", "us-east-1")}
        if s.get("endpoint"):
            scheme, host = _split_endpoint(s["endpoint"])
            kwargs.update(endpoint_override=host, scheme=scheme)
        if s.get("access_key_id") and s.get("secret_access_key"):
            kwargs.update(access_key=s["access_key_id"], secret_key=s["secret_access_key"])
            if s.get("session_token"):
                kwargs["session_token"] = s["session_token"]
        return kwargs

    def resolve(self, uri: str) -> Tuple[Any, str]:
        s3 = split_s3_uri(uri)
        if s3 is not None:
            bucket, key = s3
            return self._fs, f"{bucket}/{key}" if key else bucket
        path = local_path(uri)
        if path is None:
            raise ConfigError(f"unsupported URI {uri}: the s3 object store reads s3://, s3a://, file:// and paths")
        return self._local, path

    def spec(self) -> Spec:
        return Spec(self._spec)

    def ensure_parent(self, fs: Any, path: str) -> None:
        if fs is self._local:
            super().ensure_parent(fs, path)
        # S3 has no folders: nothing to create.

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if it is missing (used by the sample-data command only)."""
        fs = self._pafs.S3FileSystem(allow_bucket_creation=True, **self._fs_kwargs())
        if fs.get_file_info(bucket).type == self._pafs.FileType.NotFound:
            fs.create_dir(bucket)

    def boto3_client(self):
        """A boto3 S3 client with the same endpoint and credentials."""
        try:
            import boto3
        except ImportError:
            raise ConfigError("boto3 is not installed: pip install boto3 (a chronon-cli dependency)") from None

        s = self._spec
        return boto3.client("s3", endpoint_url=s.get("endpoint"), region_name=s.get("region"),
                            aws_access_key_id=s.get("access_key_id"), aws_secret_access_key=s.get("secret_access_key"),
                            aws_session_token=s.get("session_token"))

    def __repr__(self) -> str:
        return f"S3ObjectStore(endpoint={self._spec.get('endpoint')!r}, region={self._spec.get('region')!r})"
