"""Compile: discover config modules, name objects ``team.module.variable``, validate, emit JSON.

Nothing is written unless every object of the run is valid.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

from chronon_cli.compile import discover, naming, validate, writer
from chronon_cli.errors import ConfigError


@dataclass
class Compiled:
    kind: str
    name: str
    variable: str
    file: Path
    output: Path
    obj: object
    json: str
    status: str = "pending"  # written | unchanged | planned


@dataclass
class CompileResult:
    repo: Path
    objects: List[Compiled] = field(default_factory=list)

    def as_dict(self) -> dict:
        def rel(path: Path) -> str:
            return str(path.relative_to(self.repo)) if path.is_relative_to(self.repo) else str(path)

        return {"repo": str(self.repo), "objects": [
            {"kind": c.kind, "name": c.name, "file": rel(c.file), "output": rel(c.output), "status": c.status}
            for c in self.objects]}


class CompileErrors(ConfigError):
    """Several validation problems at once; the message lists every one."""

    def __init__(self, errors: List[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def load(conf: str, repo: Path) -> List[Compiled]:
    """Import, name and validate every object under ``conf``; raise on any problem, write nothing."""
    repo = Path(repo).resolve()
    compiled, errors = [], []
    for file in discover.config_files(Path(conf), repo):
        for found in discover.objects_in(file, repo):
            obj = naming.named(found)
            problems = validate.validate(obj)
            for field_path, message, hint in problems:
                errors.append(ConfigError(message, file=str(file), obj=found.variable and obj.metaData.name,
                                          field=field_path or None, hint=hint))
            if not problems:
                compiled.append(Compiled(found.kind, obj.metaData.name, found.variable, file,
                                         repo / found.output_relpath, obj, writer.render(obj)))
    if errors:
        raise CompileErrors(errors)
    if not compiled:
        raise ConfigError(f"no GroupBy, StagingQuery or Join found under {conf}")
    return compiled


def compile_conf(conf: str, repo: Path, force_overwrite: bool = False, dry_run: bool = False) -> CompileResult:
    """Compile ``conf`` (file or folder) into ``<repo>/production/<kind>/<team>/<module>.<variable>``."""
    compiled = load(conf, repo)
    refusals = []
    for item in compiled:
        reason = writer.online_change(item.output, item.json)
        if reason and not force_overwrite:
            refusals.append(ConfigError(reason, file=str(item.file), obj=item.name,
                                        hint="or pass --force-overwrite to replace it"))
    if refusals:
        raise CompileErrors(refusals)
    for item in compiled:
        if item.output.exists() and item.output.read_text() == item.json:
            item.status = "unchanged"
        elif dry_run:
            item.status = "planned"
        else:
            writer.write_atomically(item.output, item.json)
            item.status = "written"
    return CompileResult(Path(repo).resolve(), compiled)
