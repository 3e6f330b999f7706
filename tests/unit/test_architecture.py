"""The dependency rules of ARCHITECTURE.md, checked on every import statement (lazy ones included).

cli -> api -> {engines, compile, online, samples} -> {storage, agg, spec}; lower layers never import
upper ones; engines.spark and engines.flink never import each other; pyspark only in engines/spark,
pyflink only in engines/flink; agg imports no engine or storage library.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chronon_cli"

# package (by dotted prefix) -> chronon_cli packages it may import
ALLOWED = {
    "chronon_cli.cli": {"chronon_cli.api", "chronon_cli.errors"},
    "chronon_cli.api": {"chronon_cli.compile", "chronon_cli.engines", "chronon_cli.online", "chronon_cli.samples",
                        "chronon_cli.settings", "chronon_cli.spec", "chronon_cli.errors"},
    "chronon_cli.compile": {"chronon_cli.compile", "chronon_cli.spec", "chronon_cli.errors", "chronon_cli.suggest"},
    "chronon_cli.engines.spark": {"chronon_cli.engines.spark", "chronon_cli.storage", "chronon_cli.agg",
                                  "chronon_cli.spec", "chronon_cli.errors", "chronon_cli.settings",
                                  "chronon_cli.suggest"},
    "chronon_cli.engines.flink": {"chronon_cli.engines.flink", "chronon_cli.storage", "chronon_cli.agg",
                                  "chronon_cli.spec", "chronon_cli.errors", "chronon_cli.settings",
                                  "chronon_cli.online"},
    "chronon_cli.online": {"chronon_cli.online", "chronon_cli.storage", "chronon_cli.agg", "chronon_cli.spec",
                           "chronon_cli.errors", "chronon_cli.settings"},
    "chronon_cli.samples": {"chronon_cli.samples", "chronon_cli.storage", "chronon_cli.errors",
                            "chronon_cli.settings"},
    "chronon_cli.storage": {"chronon_cli.storage", "chronon_cli.errors", "chronon_cli.settings"},
    "chronon_cli.agg": {"chronon_cli.agg", "chronon_cli.spec", "chronon_cli.errors"},
    "chronon_cli.spec": {"chronon_cli.spec"},
    "chronon_cli.settings": {"chronon_cli.errors", "chronon_cli.suggest"},
    "chronon_cli.engines": set(),
    "chronon_cli.errors": set(),
    "chronon_cli.suggest": set(),
}
# third-party libraries confined to one place
CONFINED = {"pyspark": "chronon_cli.engines.spark", "pyflink": "chronon_cli.engines.flink"}
FORBIDDEN_IN = {
    "chronon_cli.agg": {"pyspark", "pyflink", "pyiceberg", "boto3", "botocore", "redis"},
    "chronon_cli.spec": {"pyspark", "pyflink", "pyiceberg", "boto3", "redis", "pyarrow", "numpy"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # from chronon_cli import api -> chronon_cli.api
                yield node.lineno, f"{node.module}.{alias.name}"


def owner(module: str) -> str:
    return max((p for p in ALLOWED if module == p or module.startswith(p + ".")), key=len, default="")


def is_chronon_package(name: str) -> bool:
    return name == "chronon_cli" or any(name == p or name.startswith(p + ".") for p in ALLOWED)


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_rule():
    unowned = [module_name(p) for p in SOURCES if module_name(p) != "chronon_cli" and not owner(module_name(p))]
    assert unowned == [], "add these packages to ALLOWED"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layering(path):
    me = module_name(path)
    mine = owner(me)
    violations = []
    for line, name in imports_of(path):
        top = name.split(".")[0]
        if top == "chronon_cli" and name != "chronon_cli" and is_chronon_package(name) and mine:
            target = owner(name)
            if target and target != mine and not any(target == a or target.startswith(a + ".") for a in ALLOWED[mine]):
                violations.append(f"{path.name}:{line} {me} imports {name}")
        confined_to = CONFINED.get(top)
        if confined_to and not (me == confined_to or me.startswith(confined_to + ".")):
            violations.append(f"{path.name}:{line} {top} outside {confined_to}")
        if top in FORBIDDEN_IN.get(mine, set()):
            violations.append(f"{path.name}:{line} {mine} must not import {top}")
    assert violations == []


def test_dsl_depends_only_on_the_model():
    for path in sorted((ROOT / "ai").rglob("*.py")):
        for line, name in imports_of(path):
            if name.startswith("chronon_cli"):
                assert name.split(".")[:2] in (["chronon_cli", "spec"], ["chronon_cli", "suggest"]), \
                    f"{path}:{line} imports {name}"
            assert name.split(".")[0] not in {"pyspark", "pyflink", "pyiceberg", "boto3", "pyarrow"}
