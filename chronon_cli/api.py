"""Library facade: one function per mode. Engines are imported lazily (Spark starts only when needed).

Functions return plain JSON-able dicts (or an Arrow table for ``sql``); the CLI renders them.
"""
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Callable, List, Optional

from chronon_cli import compile as compiler
from chronon_cli import settings as settings_module
from chronon_cli.errors import ConfigError, UsageError
from chronon_cli.spec import codec, ttypes

Progress = Optional[Callable[[str, int, int], None]]


def load_settings(profile: Optional[str] = None, repo: Optional[str] = None) -> settings_module.Settings:
    return settings_module.load(profile=profile, repo=repo)


def compile(conf: str, repo: Path, force_overwrite: bool = False, dry_run: bool = False) -> dict:
    """Compile a config file or folder into ``<repo>/production/...``."""
    return compiler.compile_conf(conf, Path(repo), force_overwrite=force_overwrite, dry_run=dry_run).as_dict()


def load_objects_with_files(conf: str, repo: Path, kind: type) -> List[tuple]:
    """(object, the file it comes from) pairs of ``kind`` from a config module/folder (compiled on the
    fly) or a compiled JSON file."""
    path = Path(conf) if Path(conf).is_absolute() else Path(repo) / conf
    if path.is_file() and path.suffix != ".py":
        try:
            objects = [(codec.from_json(kind, path.read_text()), path)]
        except (ValueError, codec.CodecError) as exc:
            raise ConfigError(f"not a compiled {kind.__name__}: {exc}", file=str(path)) from exc
    else:
        objects = [(c.obj, c.file) for c in compiler.load(conf, Path(repo)) if isinstance(c.obj, kind)]
    if not objects:
        raise ConfigError(f"no {kind.__name__} found in {conf}", field="--conf")
    return objects


def _relative(file: Path, repo: Path) -> str:
    file, repo = Path(file).resolve(), Path(repo).resolve()
    return str(file.relative_to(repo)) if file.is_relative_to(repo) else str(file)


@contextmanager
def _errors_name_file(obj, file: Path, repo: Path):
    """A config error about ``obj`` raised in the block (a derivation Spark rejects, say) names
    ``file``, the config module ``obj`` comes from."""
    try:
        yield
    except ConfigError as exc:
        if exc.file or exc.obj != obj.metaData.name:
            raise
        raise exc.in_file(_relative(file, repo)) from exc.__cause__


def _range(start: Optional[date], end: Optional[date], default_start: Optional[str]) -> tuple:
    if end is None:
        raise UsageError("this mode needs --end-date (or --ds) YYYY-MM-DD")
    start = start or (date.fromisoformat(default_start) if default_start else end)
    if start > end:
        raise UsageError(f"--start-date {start} is after --end-date {end}")
    return start, end


def staging_query_backfill(settings, conf: str, start: Optional[date], end: Optional[date], *, force: bool = False,
                           step_days: Optional[int] = None, dry_run: bool = False, progress: Progress = None) -> dict:
    planned = [(sq, file, *_range(start, end, sq.startPartition))
               for sq, file in load_objects_with_files(conf, settings.repo, ttypes.StagingQuery)]
    from chronon_cli.engines.spark.staging_query import run_staging_query

    runs = []
    for sq, file, first, last in planned:
        with _errors_name_file(sq, file, settings.repo):
            runs.append(run_staging_query(settings, sq, first, last, force=force, step_days=step_days,
                                          dry_run=dry_run, progress=progress))
    return {"mode": "staging-query-backfill", "dry_run": dry_run, "runs": runs}


def backfill(settings, conf: str, start: Optional[date], end: Optional[date], *, force: bool = False,
             step_days: Optional[int] = None, dry_run: bool = False, no_deps: bool = False,
             progress: Progress = None) -> dict:
    planned = [(gb, file, *_range(start, end, gb.backfillStartDate))
               for gb, file in load_objects_with_files(conf, settings.repo, ttypes.GroupBy)]
    from chronon_cli.engines.spark.backfill import run_backfill

    runs = []
    for gb, file, first, last in planned:
        with _errors_name_file(gb, file, settings.repo):
            runs.append(run_backfill(settings, gb, first, last, force=force, step_days=step_days, dry_run=dry_run,
                                     no_deps=no_deps, progress=progress))
    return {"mode": "backfill", "dry_run": dry_run, "runs": runs}


def sample_data(settings) -> dict:
    from chronon_cli.samples.bootcamp import write_sample_data

    return {"mode": "sample-data", "written": write_sample_data(settings)}


def sql(settings, statement: str):
    from chronon_cli.engines.spark.sql import run_sql

    if not (statement or "").strip():
        raise UsageError("--mode=sql needs a statement: -e \"SELECT ...\"")
    return run_sql(settings, statement)
