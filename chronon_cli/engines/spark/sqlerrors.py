"""Spark SQL failures as JobErrors that show the statement and the position of the error."""
import re
from typing import Any, Optional, Tuple

from chronon_cli.errors import ChrononError, JobError

_POS = re.compile(r"line (\d+),? pos(?:ition)? (\d+)")
MAX_STATEMENT_LINES = 40


def _position(exc: Any, statement: str) -> Optional[Tuple[int, int]]:
    """(line, column), both 1-based, of the error in ``statement``, if Spark says where."""
    try:
        contexts = exc.getQueryContext() or []
    except Exception:
        contexts = []
    for ctx in contexts:
        try:
            start = int(ctx.startIndex())
        except Exception:
            continue
        if 0 <= start <= len(statement):
            before = statement[:start]
            return before.count("\n") + 1, start - (before.rfind("\n") + 1) + 1
    match = _POS.search(str(exc))
    if match:
        return int(match.group(1)), int(match.group(2)) + 1
    return None


_SQLSTATE = re.compile(r"SQLSTATE: \w+")


def _headline(exc: Any) -> str:
    text = str(exc).strip()
    text = text.split("== SQL", 1)[0].strip()
    text = text.split("\nJVM stacktrace:", 1)[0].strip()
    state = _SQLSTATE.search(text)
    if state:  # Spark's message ends there; an analyzed plan may follow
        text = text[:state.end()]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:3]) if lines else type(exc).__name__


def sql_error(exc: BaseException, statement: str, what: str = "statement") -> JobError:
    """A JobError for ``exc`` raised by ``statement`` (shows the statement with a caret at the position)."""
    if isinstance(exc, ChrononError):
        return exc  # type: ignore[return-value]
    head = _headline(exc)
    pos = _position(exc, statement)
    lines = statement.strip("\n").splitlines() or [""]
    out = [f"SQL error in {what}: {head}"]
    if pos:
        line_no, col = pos
        out.append(f"  at line {line_no}, position {col}:")
        src = statement.splitlines()
        if 1 <= line_no <= len(src):
            out.append(f"    {src[line_no - 1]}")
            out.append("    " + " " * max(0, col - 1) + "^")
    shown = lines[:MAX_STATEMENT_LINES]
    out.append("  statement:")
    out.extend(f"    {ln}" for ln in shown)
    if len(lines) > len(shown):
        out.append(f"    ... ({len(lines) - len(shown)} more lines)")
    hint = None
    if "TABLE_OR_VIEW_NOT_FOUND" in head:
        hint = ("Iceberg tables are namespace.table (SHOW TABLES IN <namespace> lists them); "
                "run the staging query or backfill that produces a missing one")
    return JobError("\n".join(out), hint=hint)


def is_spark_error(exc: BaseException) -> bool:
    try:
        from pyspark.errors import PySparkException
        from py4j.protocol import Py4JJavaError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (PySparkException, Py4JJavaError))


def run_sql(spark: Any, statement: str, what: str = "statement"):
    """``spark.sql(statement)`` with Spark errors turned into JobErrors."""
    try:
        return spark.sql(statement)
    except Exception as exc:
        if is_spark_error(exc):
            raise sql_error(exc, statement, what) from None
        raise


def task_error(exc: BaseException, what: str) -> JobError:
    """A JobError for a failed Spark job: the Python error raised in a task, without Spark's noise."""
    text = str(exc)
    markers = ("CHRONON_DS_OUT_OF_RANGE", "CHRONON_DS_NULL", "JobError:", "FileNotFoundError:", "OSError:",
               "ValueError:", "ArrowInvalid:", "PermissionError:")
    for line in text.splitlines():
        for marker in markers:
            if marker in line:
                msg = line.strip()
                for prefix in ("chronon_cli.storage.parquet_files.DsRangeError: ", "pyarrow.lib.", "ValueError: "):
                    msg = msg.replace(prefix, "")
                msg = msg.replace("CHRONON_DS_OUT_OF_RANGE: ", "").replace("CHRONON_DS_NULL: ", "")
                return JobError(f"{what} failed: {msg}")
    raised = _python_exception(text)
    return JobError(f"{what} failed: {raised or _headline(exc)}")


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): (.+)$")


def _python_exception(text: str) -> Optional[str]:
    """``Name: message`` of the Python exception a task raised, from the traceback Spark wraps in
    its error (RDD jobs report it only inside the JVM's message); None when there is none."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if "Traceback (most recent call last):" not in line:
            continue
        for candidate in lines[start + 1:]:
            match = _EXCEPTION_LINE.match(candidate)
            if match:
                return f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2).strip()}"
    return None
