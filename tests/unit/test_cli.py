"""The run.py option surface: modes, dates, aliases, exit codes, JSON output."""
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from chronon_cli.cli import MODES, main

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_unknown_mode_lists_the_valid_ones():
    result = invoke("--mode=bakfill")
    assert result.exit_code == 2
    for mode in MODES:
        assert mode in result.output


def test_bad_dates_are_usage_errors():
    for option in ("--start-date=2023-12-1", "--end-date=2023-13-01", "--ds=yesterday", "--end-ds=2023/12/01"):
        result = invoke("--mode=backfill", "--conf=group_bys", option)
        assert result.exit_code == 2, option
        assert "YYYY-MM-DD" in result.output


def test_job_modes_need_a_conf_and_an_end_date(tmp_path):
    result = invoke("--mode=backfill", f"--repo={tmp_path}")
    assert result.exit_code == 2 and "needs --conf" in result.output


def test_start_after_end_is_refused():
    result = invoke("--mode=backfill", f"--repo={ROOT}", "--conf=group_bys/bootcamp/user_purchase_features.py",
                    "--start-date=2023-12-07", "--ds=2023-12-01")
    assert result.exit_code == 2 and "after --end-date" in result.output


def test_compile_json_output_and_dry_run_write_nothing(tmp_path):
    result = invoke("--mode=compile", f"--repo={ROOT}", "--conf=group_bys/quickstart", "--dry-run", "--output", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert {o["name"] for o in doc["objects"]} == {"quickstart.purchases.v1", "quickstart.users.v1"}
    assert all(o["status"] in ("planned", "unchanged") for o in doc["objects"])


def test_run_py_entry_point_exit_code_for_config_errors(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "--mode=compile", "--conf=group_bys/nothing.py",
                           f"--repo={tmp_path}"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_text_rendering_shows_nested_runs(capsys):
    from chronon_cli import cli

    wide = {f"field_{i}": i for i in range(10)}
    cli.render({"mode": "backfill", "runs": [dict(wide, table="ns.t", partitions=["2024-01-01", "2024-01-02",
                                                                                   "2024-01-03", "2024-01-04"])]},
               "text")
    printed = capsys.readouterr().out
    assert "runs: ns.t" in printed and "field_9" in printed
    assert "2024-01-01 .. 2024-01-04 (4)" in printed


def test_compile_text_output_lists_objects():
    result = invoke("--mode=compile", f"--repo={ROOT}", "--conf=group_bys/quickstart", "--dry-run")
    assert result.exit_code == 0
    assert "quickstart.purchases.v1" in result.output and "group_bys/quickstart/purchases.py" in result.output


def test_backfill_dry_run_from_a_compiled_file_plans_without_spark(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONON_HOME", str(tmp_path / "home"))
    repo = tmp_path / "repo"
    (repo / "group_bys").mkdir(parents=True)
    import shutil

    shutil.copytree(ROOT / "group_bys" / "quickstart", repo / "group_bys" / "quickstart")
    assert invoke("--mode=compile", f"--repo={repo}", "--conf=group_bys/quickstart/purchases.py").exit_code == 0
    result = invoke("--mode=backfill", f"--repo={repo}", "--conf=production/group_bys/quickstart/purchases.v1",
                    "--start-date=2024-01-01", "--end-date=2024-01-03", "--dry-run", "--output", "json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)["runs"][0]
    assert run["table"] == "quickstart.quickstart_purchases_v1"
    assert run["planned_partitions"] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert not (tmp_path / "home" / "warehouse" / "quickstart").exists()


def test_a_compiled_file_of_another_kind_is_refused(tmp_path):
    bogus = tmp_path / "not_compiled.v1"
    bogus.write_text('{"hello": 1}')
    result = invoke("--mode=backfill", f"--repo={tmp_path}", f"--conf={bogus}", "--ds=2024-01-01")
    assert result.exit_code == 2 and "not a compiled GroupBy" in result.output
