"""Shared fixtures: one Spark session per test session, a temporary CHRONON_HOME, a moto S3 server.

- ``chronon_home``: a fresh folder, exported as CHRONON_HOME for the test.
- ``local_settings``: the ``local`` profile on ``chronon_home`` (SQLite catalog, local warehouse,
  local object store).
- ``spark``: the process's SparkSession (``get_spark``), started once; tests with other settings
  get the same session (data sources are registered per configuration).
- ``moto_server``: ``moto_server -H 127.0.0.1 -p <free port>`` started as a subprocess once per
  session; its endpoint URL. ``s3_settings`` is a profile on it: S3 object store and an ``s3://``
  Iceberg warehouse, both through the S3 protocol.
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MOTO_KEY = "testing"  # moto accepts any credentials


def load_settings(home: Path, profile: str = "local", **env: str):
    from chronon_cli import settings as settings_module

    return settings_module.load(profile, repo=str(REPO), env={**os.environ, "CHRONON_HOME": str(home), **env})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("chronon_session_home")


@pytest.fixture
def chronon_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "chronon_home"
    home.mkdir()
    monkeypatch.setenv("CHRONON_HOME", str(home))
    return home


@pytest.fixture
def local_settings(chronon_home):
    return load_settings(chronon_home)


@pytest.fixture(scope="session")
def spark(session_home):
    from chronon_cli.engines.spark.session import get_spark, stop_spark

    session = get_spark(load_settings(session_home))
    yield session
    stop_spark()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1).read()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server did not start on {endpoint}")
            time.sleep(0.2)
    yield endpoint
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


S3_PROFILE = """
spark:
  master: local[2]
catalog:
  type: sql
  name: chronon
  uri: sqlite:///${CHRONON_HOME}/catalog.db
  warehouse: s3://${WAREHOUSE_BUCKET}/warehouse
  s3.endpoint: ${S3_ENDPOINT}
  s3.access-key-id: ${AWS_ACCESS_KEY_ID}
  s3.secret-access-key: ${AWS_SECRET_ACCESS_KEY}
  s3.region: us-east-1
s3:
  type: s3
  endpoint: ${S3_ENDPOINT}
  region: us-east-1
"""


@pytest.fixture
def s3_settings(moto_server, chronon_home, monkeypatch):
    """A profile on moto: S3 object store (credentials from the environment) and an S3 warehouse."""
    import uuid

    import boto3

    bucket = f"wh-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_KEY)
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id=MOTO_KEY,
                 aws_secret_access_key=MOTO_KEY).create_bucket(Bucket=bucket)
    profile = chronon_home / "s3-profile.yaml"
    profile.write_text(S3_PROFILE)
    settings = load_settings(chronon_home, str(profile), S3_ENDPOINT=moto_server, WAREHOUSE_BUCKET=bucket,
                             AWS_ACCESS_KEY_ID=MOTO_KEY, AWS_SECRET_ACCESS_KEY=MOTO_KEY)
    settings.warehouse_bucket = bucket
    return settings
