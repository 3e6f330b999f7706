"""Find config modules under a conf path, import them from the config root, collect their objects."""
import contextlib
import importlib
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Tuple

from ai.chronon.utils import ORIGIN_ATTR
from chronon_cli.errors import ConfigError
from chronon_cli.spec import ttypes

KIND_TYPES = {"group_bys": ttypes.GroupBy, "staging_queries": ttypes.StagingQuery, "joins": ttypes.Join}


@dataclass
class Found:
    """One config object found in a module: ``kind/team/module.variable``."""

    kind: str
    team: str
    module: str          # dotted module path, e.g. group_bys.bootcamp.user_purchase_features
    variable: str
    file: Path
    obj: object

    @property
    def default_name(self) -> str:
        """``team.module.variable`` (module path below the team folder)."""
        below_team = self.module.split(".")[2:]
        return ".".join([self.team, *below_team, self.variable])

    @property
    def output_relpath(self) -> Path:
        """``production/<kind>/<team>/<module>.<variable>`` relative to the config root."""
        below_team = self.module.split(".")[2:]
        return Path("production", self.kind, self.team, ".".join([*below_team, self.variable]))


def _kind_and_team(file: Path, repo: Path) -> Tuple[str, str]:
    try:
        parts = file.resolve().relative_to(repo).parts
    except ValueError:
        raise ConfigError(f"{file} is not inside the config repo {repo}",
                          hint="pass --repo DIR (or set CHRONON_REPO) to the folder holding group_bys/") from None
    if len(parts) < 3 or parts[0] not in KIND_TYPES:
        raise ConfigError(
            f"{file} must sit under <repo>/<kind>/<team>/ with kind one of {', '.join(KIND_TYPES)}",
            file=str(file))
    return parts[0], parts[1]


def config_files(conf: Path, repo: Path) -> List[Path]:
    """The config modules a ``--conf`` file or folder names (``__init__.py`` and hidden files excluded)."""
    conf = conf if conf.is_absolute() else (repo / conf)
    if not conf.exists():
        raise ConfigError(f"--conf {conf} does not exist")
    if conf.is_file():
        if conf.suffix != ".py":
            raise ConfigError(f"--conf {conf} is not a Python config module (.py)")
        return [conf.resolve()]
    return sorted(p.resolve() for p in conf.rglob("*.py")
                  if p.name != "__init__.py" and not any(part.startswith(".") for part in p.parts))


def _module_name(file: Path, repo: Path) -> str:
    return ".".join(file.resolve().relative_to(repo).with_suffix("").parts)


@contextlib.contextmanager
def _config_root_first(repo: Path):
    """Put the config root first on sys.path and hide other roots' config packages while importing.

    Without this a regular package ``group_bys`` elsewhere on the path (e.g. this project's samples)
    would shadow a config repo whose folders have no ``__init__.py``.
    """
    saved = list(sys.path)
    hidden = [entry for entry in sys.path
              if Path(entry or ".").resolve() != repo
              and any((Path(entry or ".") / kind / "__init__.py").exists() for kind in KIND_TYPES)]
    sys.path[:] = [str(repo)] + [e for e in sys.path if e not in hidden and Path(e or ".").resolve() != repo]
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path[:] = [str(repo)] + [e for e in saved if Path(e or ".").resolve() != repo]


def import_module(file: Path, repo: Path):
    """Import a config module with the config root first on the import path."""
    repo_str = str(repo)
    _forget_config_modules()
    name = _module_name(file, repo)
    try:
        with _config_root_first(repo):
            return importlib.import_module(name)
    except Exception as exc:  # a user module failed: report where
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(repo_str)]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(file)
        raise ConfigError(f"importing the config module failed at {where}: {type(exc).__name__}: {exc}",
                          file=str(file)) from exc


def _forget_config_modules() -> None:
    """Drop cached config modules so every compile imports the files as they are now, from this root."""
    for name in list(sys.modules):
        if name.split(".")[0] in KIND_TYPES:
            del sys.modules[name]


def objects_in(file: Path, repo: Path) -> Iterator[Found]:
    """The objects of the file's kind defined in the module (imported ones belong to their own module)."""
    kind, team = _kind_and_team(file, repo)
    module = import_module(file, repo)
    wanted = KIND_TYPES[kind]
    for variable, obj in sorted(vars(module).items()):
        if variable.startswith("_") or not isinstance(obj, wanted):
            continue
        origin = getattr(obj, ORIGIN_ATTR, module.__name__)
        if origin != module.__name__ and origin in sys.modules and origin.split(".")[0] in KIND_TYPES:
            continue  # imported from another config module
        yield Found(kind, team, module.__name__, variable, file, obj)
