"""engines.spark.worker_daemon: zip importers re-read their archive only when the file changed
(tests/integration/test_worker_daemon_spark.py: Spark's Python workers run under it)."""
import os
import zipfile
import zipimport

import pytest

from chronon_cli.engines.spark import worker_daemon


def write_zip(path, modules):
    with zipfile.ZipFile(path, "w") as z:
        for name, body in modules.items():
            z.writestr(f"{name}.py", body)


@pytest.fixture
def patched(monkeypatch):
    monkeypatch.setattr(zipimport.zipimporter, "invalidate_caches", worker_daemon.invalidate_if_changed)


def test_an_unchanged_archive_is_not_read_again(tmp_path, patched):
    archive = tmp_path / "lib.zip"
    write_zip(archive, {"alpha": "X = 1"})
    importer = zipimport.zipimporter(str(archive))
    importer.invalidate_caches()  # the first call stamps the archive
    files = importer._files
    for _ in range(3):
        importer.invalidate_caches()
    assert importer._files is files


def test_a_changed_archive_is_read_again(tmp_path, patched):
    archive = tmp_path / "lib.zip"
    write_zip(archive, {"alpha": "X = 1"})
    importer = zipimport.zipimporter(str(archive))
    importer.invalidate_caches()
    write_zip(archive, {"alpha": "X = 1", "beta": "Y = 2"})
    os.utime(archive, ns=(os.stat(archive).st_atime_ns, os.stat(archive).st_mtime_ns + 10**9))
    importer.invalidate_caches()
    assert importer.find_spec("beta") is not None


def test_without_the_patch_every_call_reads_again(tmp_path):
    # the behaviour the daemon works around (Python 3.11's zipimporter)
    archive = tmp_path / "lib.zip"
    write_zip(archive, {"alpha": "X = 1"})
    importer = zipimport.zipimporter(str(archive))
    files = importer._files
    importer.invalidate_caches()
    assert importer._files is not files



def test_workers_import_numpy_without_huge_pages_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    worker_daemon.no_numpy_huge_pages()
    assert os.environ["NUMPY_MADVISE_HUGEPAGE"] == "0"
    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
    worker_daemon.no_numpy_huge_pages()
    assert os.environ["NUMPY_MADVISE_HUGEPAGE"] == "1"


def test_freed_memory_stays_with_the_process():
    # a fresh interpreter (the setting is process-wide): 512 MiB touched, then freed
    import subprocess
    import sys

    probe = """
import sys
from chronon_cli.engines.spark import worker_daemon
kept = sys.argv[1] == "kept" and worker_daemon.keep_freed_memory()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
before = rss()
block = bytearray(512 << 20)
del block
print(kept, (rss() - before) >> 20)
"""
    def run(mode):
        out = subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, check=True)
        kept, grown = out.stdout.split()
        return kept, int(grown)

    assert run("kept") == ("True", pytest.approx(512, abs=32))
    assert run("default")[1] < 32  # glibc's default returns a freed big block at once
