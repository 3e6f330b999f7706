"""Errors the CLI maps to exit codes: 2 for bad usage or config, 1 for a job failure."""
from typing import Optional


class ChrononError(Exception):
    """Base class. ``exit_code`` is what ``run.py`` exits with; ``hint`` is an optional suggestion."""

    exit_code = 1

    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(ChrononError):
    """Bad command-line usage (unknown mode, bad date, missing option)."""

    exit_code = 2


class ConfigError(ChrononError):
    """A config or profile is invalid; names the file, the object and the field."""

    exit_code = 2

    def __init__(self, message: str, file: Optional[str] = None, obj: Optional[str] = None,
                 field: Optional[str] = None, hint: Optional[str] = None):
        where = ", ".join(p for p in (
            f"file {file}" if file else None,
            f"object {obj}" if obj else None,
            f"field {field}" if field else None,
        ) if p)
        super().__init__(f"{where}: {message}" if where else message, hint)
        self.detail, self.file, self.obj, self.field = message, file, obj, field

    def in_file(self, file: str) -> "ConfigError":
        """This error naming ``file`` (the config module it comes from) when it names none yet."""
        if self.file:
            return self
        return ConfigError(self.detail, file=file, obj=self.obj, field=self.field, hint=self.hint)


class JobError(ChrononError):
    """A job failed while running (missing input, SQL error, storage failure)."""

    exit_code = 1
