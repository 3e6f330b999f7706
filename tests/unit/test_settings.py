"""Profiles: lookup by name or path, ${VAR} expansion, CHRONON_HOME default, precedence."""
from pathlib import Path

import pytest

from chronon_cli import settings
from chronon_cli.errors import ConfigError


def test_local_profile_puts_all_state_under_chronon_home(tmp_path):
    s = settings.load(repo=str(tmp_path), env={})
    assert s.name == "local"
    assert s.home == (tmp_path / ".chronon").resolve()
    assert s.catalog["uri"] == f"sqlite:///{s.home}/catalog.db"
    assert s.s3 == {"type": "local", "root": f"{s.home}/s3"}
    assert s.spark["master"] == "local[*]"


def test_chronon_home_from_environment(tmp_path):
    s = settings.load(repo=str(tmp_path), env={"CHRONON_HOME": str(tmp_path / "elsewhere")})
    assert s.home == tmp_path / "elsewhere"
    assert s.kv["path"] == f"{tmp_path / 'elsewhere'}/kv.sqlite"


def test_profile_precedence_argument_over_environment(tmp_path):
    env = {"CHRONON_PROFILE": "bootcamp"}
    assert settings.load(repo=str(tmp_path), env=env).name == "bootcamp"
    assert settings.load(profile="local", repo=str(tmp_path), env=env).name == "local"


def test_variable_defaults_and_overrides(tmp_path):
    s = settings.load(profile="bootcamp", repo=str(tmp_path), env={"S3_ENDPOINT": "http://127.0.0.1:9999"})
    assert s.s3["endpoint"] == "http://127.0.0.1:9999"
    assert s.catalog["uri"] == "http://iceberg-rest:8181"


def test_missing_variable_is_an_error_naming_it(tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("s3:\n  type: s3\n  secret: ${MY_SECRET}\n")
    with pytest.raises(ConfigError) as info:
        settings.load(profile=str(profile), repo=str(tmp_path), env={})
    assert "MY_SECRET" in str(info.value) and "mine.yaml" in str(info.value) and "s3.secret" in str(info.value)


def test_unknown_profile_suggests_nearest(tmp_path):
    with pytest.raises(ConfigError) as info:
        settings.load(profile="lokal", repo=str(tmp_path), env={})
    assert "did you mean 'local'?" in str(info.value)


def test_profile_must_be_a_mapping(tmp_path):
    profile = tmp_path / "bad.yaml"
    profile.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        settings.load(profile=str(profile), repo=str(tmp_path), env={})


def test_shipped_profiles_parse():
    for path in Path(settings.PROFILE_DIRS[0]).glob("*.yaml"):
        s = settings.load(profile=str(path), repo=".", env={})
        assert {"spark", "catalog", "s3", "kv"} <= set(s.raw), path
