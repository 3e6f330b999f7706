"""ObjectStore backends: URI mapping, specs (picklable, secrets masked), listing, missing objects.

The S3 backend runs against a real S3-protocol server (moto_server on loopback).
"""
import os
import pickle

import pytest

from chronon_cli.errors import ConfigError, JobError
from chronon_cli.storage import Spec, object_store, split_s3_uri, store_from_spec


def test_split_s3_uri():
    assert split_s3_uri("s3a://chronon/warehouse/data/x.parquet") == ("chronon", "warehouse/data/x.parquet")
    assert split_s3_uri("s3://chronon") == ("chronon", "")
    assert split_s3_uri("file:///tmp/x") is None
    with pytest.raises(ConfigError):
        split_s3_uri("s3:///key")


def test_local_store_maps_s3_uris_under_root(local_settings, chronon_home):
    store = object_store(local_settings)
    root = chronon_home / "s3"
    for uri in ("s3://chronon/a/b.parquet", "s3a://chronon/a/b.parquet", "s3n://chronon/a/b.parquet"):
        assert store.resolve(uri)[1] == str(root / "chronon" / "a" / "b.parquet")
    assert store.resolve("file:///tmp/x.parquet")[1] == "/tmp/x.parquet"
    assert store.resolve("/tmp/y")[1] == "/tmp/y"
    with pytest.raises(ConfigError):
        store.resolve("gs://bucket/key")


def test_local_store_write_read_list_require(local_settings):
    store = object_store(local_settings)
    store.write_bytes("s3://b/dir/one.parquet", b"1")
    store.write_bytes("s3a://b/dir/sub/two.parquet", b"22")
    store.write_bytes("s3://b/dir/_SUCCESS", b"")
    assert store.read_bytes("s3a://b/dir/one.parquet") == b"1"
    assert [os.path.basename(p) for p in store.list_files("s3://b/dir")] == ["one.parquet", "two.parquet"]
    store.require("s3://b/dir/one.parquet")
    with pytest.raises(JobError, match="s3a://b/dir/missing.parquet"):
        store.require("s3a://b/dir/missing.parquet")


def test_spec_rebuilds_the_store_and_pickles(local_settings):
    store = object_store(local_settings)
    spec = store.spec()
    again = store_from_spec(pickle.loads(pickle.dumps(spec)))
    assert again.resolve("s3://x/y")[1] == store.resolve("s3://x/y")[1]


def test_spec_repr_masks_secrets():
    spec = Spec(type="s3", endpoint="http://127.0.0.1:9000", access_key_id="AKIAVISIBLE",
                secret_access_key="very-secret", session_token="tok")
    text = repr(spec) + str(spec)
    assert "very-secret" not in text and "AKIAVISIBLE" not in text and "tok'" not in text
    assert "127.0.0.1:9000" in text
    assert pickle.loads(pickle.dumps(spec))["secret_access_key"] == "very-secret"


def test_unknown_store_type(local_settings):
    local_settings.s3 = {"type": "ftp"}
    with pytest.raises(ConfigError, match="unknown object store type 'ftp'"):
        object_store(local_settings)


def test_s3_credentials_from_environment(monkeypatch):
    from chronon_cli.storage.s3 import s3_spec

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    spec = s3_spec({"endpoint": "http://127.0.0.1:1"})
    assert spec["access_key_id"] == "from-env" and spec["secret_access_key"] == "env-secret"
    spec = s3_spec({"endpoint": "http://127.0.0.1:1", "access_key_id": "profile", "secret_access_key": "p"})
    assert spec["access_key_id"] == "profile"
    store = store_from_spec(spec)
    assert "env-secret" not in repr(store) and "p'" not in repr(store)


@pytest.mark.integration
def test_s3_store_against_moto(s3_settings):
    store = object_store(s3_settings)
    assert type(store).__name__ == "S3ObjectStore"
    store.ensure_bucket("store-test")
    store.write_bytes("s3a://store-test/k/one.parquet", b"abc")
    assert store.read_bytes("s3://store-test/k/one.parquet") == b"abc"
    assert store.exists("s3://store-test/k/one.parquet")
    assert store.list_files("s3://store-test/k") == ["store-test/k/one.parquet"]
    with pytest.raises(JobError, match="s3://store-test/k/nope.parquet"):
        store.require("s3://store-test/k/nope.parquet")
    # rebuilt from its spec (as inside Spark tasks), it reaches the same server
    assert store_from_spec(pickle.loads(pickle.dumps(store.spec()))).read_bytes("s3://store-test/k/one.parquet") == b"abc"
