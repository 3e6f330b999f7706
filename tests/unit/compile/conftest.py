import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from chronon_cli.cli import main

HEADER = """
from ai.chronon.api.ttypes import Source, EventSource, EntitySource
from ai.chronon.group_by import GroupBy, Aggregation, Operation, Window, TimeUnit, Accuracy
from ai.chronon.query import Query, select
"""


class ConfigRepo:
    """A throwaway config repo; ``compile()`` runs ``run.py --mode=compile`` in-process."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, relpath: str, body: str, header: bool = True) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((HEADER if header else "") + textwrap.dedent(body))
        return path

    def compile(self, conf: str, *extra: str):
        return CliRunner().invoke(main, ["--mode=compile", f"--conf={conf}", f"--repo={self.root}", *extra])

    @property
    def production(self) -> Path:
        return self.root / "production"

    def written(self):
        return sorted(p.relative_to(self.production) for p in self.production.rglob("*") if p.is_file()) \
            if self.production.exists() else []


@pytest.fixture
def repo(tmp_path) -> ConfigRepo:
    return ConfigRepo(tmp_path / "configs")
