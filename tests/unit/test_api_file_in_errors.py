"""A config error raised while a mode runs names the file its object comes from (api), here for a
compiled staging query whose query is empty (compile would refuse it; a hand-edited JSON gets past)."""
from datetime import date

import pytest

from ai.chronon.api import ttypes
from chronon_cli import api
from chronon_cli import settings as settings_module
from chronon_cli.errors import ConfigError
from chronon_cli.spec import codec


def test_a_run_time_config_error_names_the_compiled_file(tmp_path):
    sq = ttypes.StagingQuery(metaData=ttypes.MetaData(name="team.empty.v1", outputNamespace="team"), query="")
    path = tmp_path / "production" / "staging_queries" / "team" / "empty.v1"
    path.parent.mkdir(parents=True)
    path.write_text(codec.to_json(sq))
    s = settings_module.load(repo=str(tmp_path), env={"CHRONON_HOME": str(tmp_path / "home")})
    with pytest.raises(ConfigError) as raised:
        api.staging_query_backfill(s, "production/staging_queries/team/empty.v1", date(2024, 1, 1), date(2024, 1, 2))
    assert str(raised.value).startswith(
        "file production/staging_queries/team/empty.v1, object team.empty.v1, field query: "), str(raised.value)
