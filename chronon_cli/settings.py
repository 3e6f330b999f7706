"""Profiles: ``confs/<name>.yaml`` (or a path), ``${VAR}`` / ``${VAR:-default}`` expansion, one precedence rule.

Precedence, highest first: explicit argument (``--profile``/``--repo``) > environment
(``CHRONON_PROFILE``/``CHRONON_REPO``) > default (``local`` profile, current folder).
``CHRONON_HOME`` defaults to ``<repo>/.chronon``; every piece of local state lives under it.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import yaml

from chronon_cli.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
PROFILE_DIRS = (PACKAGE_ROOT / "confs",)
DEFAULT_PROFILE = "local"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Settings:
    """A loaded profile. Sections are plain dicts; backends read their own keys."""

    name: str
    path: Path
    repo: Path
    home: Path
    spark: Dict[str, Any] = field(default_factory=dict)
    catalog: Dict[str, Any] = field(default_factory=dict)
    s3: Dict[str, Any] = field(default_factory=dict)
    kv: Dict[str, Any] = field(default_factory=dict)
    raw: Dict[str, Any] = field(default_factory=dict)


def expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of ``value``; a missing VAR is an error."""
    if isinstance(value, dict):
        return {k: expand(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: "re.Match[str]") -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set", field=where,
                          hint=f"export {name}=... or use ${{{name}:-default}} in the profile")

    return _VAR.sub(replace, value)


def resolve_profile_path(profile: str) -> Path:
    candidate = Path(profile)
    if candidate.suffix in (".yaml", ".yml") or os.sep in profile:
        if not candidate.is_file():
            raise ConfigError(f"profile file {profile} does not exist")
        return candidate.resolve()
    for folder in PROFILE_DIRS:
        path = folder / f"{profile}.yaml"
        if path.is_file():
            return path
    known = sorted(p.stem for d in PROFILE_DIRS for p in d.glob("*.yaml"))
    from chronon_cli.suggest import did_you_mean

    raise ConfigError(f"unknown profile '{profile}'{did_you_mean(profile, known)}; known profiles: {', '.join(known)}")


def load(profile: Optional[str] = None, repo: Optional[str] = None,
         env: Optional[Mapping[str, str]] = None) -> Settings:
    """Load a profile by name or path with ``${VAR}`` expansion, for the config repo ``repo``."""
    env = dict(os.environ if env is None else env)
    profile = profile or env.get("CHRONON_PROFILE") or DEFAULT_PROFILE
    repo_path = Path(repo or env.get("CHRONON_REPO") or ".").resolve()
    if not repo_path.is_dir():
        raise ConfigError(f"config repo {repo_path} is not a folder", field="--repo")
    home = Path(env.get("CHRONON_HOME") or repo_path / ".chronon").resolve()
    env["CHRONON_HOME"] = str(home)
    env["CHRONON_REPO"] = str(repo_path)
    path = resolve_profile_path(profile)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("a profile must be a mapping of sections", file=str(path))
    try:
        raw = expand(raw, env, path.stem)
    except ConfigError as exc:
        raise ConfigError(exc.message, file=str(path), hint=exc.hint) from None
    return Settings(
        name=path.stem, path=path, repo=repo_path, home=home,
        spark=dict(raw.get("spark") or {}), catalog=dict(raw.get("catalog") or {}),
        s3=dict(raw.get("s3") or {}), kv=dict(raw.get("kv") or {}), raw=raw,
    )
