"""``python run.py --mode=...``: parse options, call one api function, render with rich. No logic here."""
import json
import sys
from datetime import date
from typing import Any, Optional

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chronon_cli import api
from chronon_cli.errors import ChrononError, UsageError

MODES = ("compile", "staging-query-backfill", "backfill", "sample-data", "sql")
CONF_MODES = ("compile", "staging-query-backfill", "backfill")
WIDE_ROW = 8  # rows with more fields than this render vertically

# Wide enough for feature tables when output is piped; columns fold rather than truncate.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def _date(ctx, param, value: Optional[str]) -> Optional[date]:
    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date in YYYY-MM-DD form") from None


def _cell(value: Any) -> str:
    if isinstance(value, list) and len(value) > 3 and all(isinstance(v, str) for v in value):
        return f"{value[0]} .. {value[-1]} ({len(value)})"  # e.g. a run of partitions
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def _table(*columns: str, **options) -> Table:
    table = Table(**options)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def render_text(result: Any, title: str = "") -> None:
    """Generic rendering: scalars as key/value rows, lists of dicts as tables, Arrow tables as tables."""
    if hasattr(result, "to_pylist") and hasattr(result, "column_names"):
        table = _table(*result.column_names, title=title or None)
        for row in result.to_pylist():
            table.add_row(*(_cell(row[c]) for c in result.column_names))
        out.print(table)
        out.print(f"{result.num_rows} row(s)")
        return
    scalars = {k: v for k, v in result.items() if not (isinstance(v, list) and v and isinstance(v[0], dict))}
    if scalars:
        table = _table("key", "value", title=title or None, show_header=False)
        for key, value in scalars.items():
            table.add_row(key, _cell(value))
        out.print(table)
    for key, value in result.items():
        if key in scalars:
            continue
        nested = [row for row in value if isinstance(row, dict)]
        flat_columns = [c for c in nested[0] if not any(isinstance(r.get(c), list) and r.get(c) and
                                                         isinstance(r.get(c)[0], dict) for r in nested)]
        if len(flat_columns) > WIDE_ROW:  # one key/value table per row reads better than a wrapped grid
            for row in nested:
                vertical = _table("field", "value", title=f"{key}: {row.get('table') or row.get('name') or ''}",
                                  show_header=False)
                for column in flat_columns:
                    vertical.add_row(column, _cell(row.get(column)))
                out.print(vertical)
        else:
            table = _table(*flat_columns, title=key)
            for row in nested:
                table.add_row(*(_cell(row.get(c)) for c in flat_columns))
            out.print(table)
        for row in nested:
            for column in set(row) - set(flat_columns):
                render_text({column: row[column]}, title=f"{key}: {row.get('table') or row.get('name') or ''}")


def render(result: Any, output: str) -> None:
    if output == "json":
        if hasattr(result, "to_pylist"):
            result = {"columns": result.column_names, "rows": result.to_pylist()}
        click.echo(json.dumps(result, default=str, indent=2, sort_keys=True))
    else:
        render_text(result)


class _ProgressBar:
    """Adapts the library's ``progress(description, done, total)`` callback to a rich progress bar."""

    def __init__(self, enabled: bool):
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=err, disable=not enabled)
        self.tasks = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def __call__(self, description: str, done: int, total: int) -> None:
        if description not in self.tasks:
            self.tasks[description] = self.bar.add_task(description, total=total)
        self.bar.update(self.tasks[description], completed=done, total=total)


def _run(mode: str, conf, start, end, profile, repo, output, dry_run, force, force_overwrite, step_days,
         no_deps, execute):
    if mode in CONF_MODES and not conf:
        raise UsageError(f"--mode={mode} needs --conf (a config module, a folder, or a compiled file)")
    if step_days is not None and step_days <= 0:
        raise UsageError("--step-days must be a positive number of days")
    if mode == "compile":
        settings = api.load_settings(profile, repo)
        return api.compile(conf, settings.repo, force_overwrite=force_overwrite, dry_run=dry_run)
    settings = api.load_settings(profile, repo)
    if mode == "sample-data":
        return api.sample_data(settings)
    if mode == "sql":
        return api.sql(settings, execute)
    with _ProgressBar(enabled=output == "text") as progress:
        if mode == "staging-query-backfill":
            return api.staging_query_backfill(settings, conf, start, end, force=force, step_days=step_days,
                                              dry_run=dry_run, progress=progress)
        return api.backfill(settings, conf, start, end, force=force, step_days=step_days, dry_run=dry_run,
                            no_deps=no_deps, progress=progress)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--mode", required=True, type=click.Choice(MODES), help="What to run.")
@click.option("--conf", help="Config module (.py), a folder of them, or a compiled file under production/.")
@click.option("--start-date", "--start-ds", "start", callback=_date, help="First partition (YYYY-MM-DD).")
@click.option("--end-date", "--end-ds", "--ds", "end", callback=_date, help="Last partition (YYYY-MM-DD).")
@click.option("--profile", envvar="CHRONON_PROFILE", help="Profile name in confs/ or a YAML path [default: local].")
@click.option("--repo", envvar="CHRONON_REPO", help="Config root holding group_bys/ etc. [default: .]")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the plan (objects, partitions, tables); write nothing.")
@click.option("--force", is_flag=True, help="Recompute partitions that already exist.")
@click.option("--force-overwrite", is_flag=True, help="compile: replace a changed online object.")
@click.option("--step-days", type=int, help="Run long ranges in chunks of this many days.")
@click.option("--no-deps", is_flag=True, help="backfill: fail on missing upstream partitions instead of computing them.")
@click.option("-e", "--execute", "execute", help="sql: the statement to run.")
def main(**options):
    """chronon-cli: compile Chronon feature configs and run them (Spark, Iceberg, KV store)."""
    output = options["output"]
    try:
        result = _run(**options)
    except ChrononError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    render(result, output)


if __name__ == "__main__":
    main()
