"""Spark's Python worker daemon (``pyspark.daemon``), minus costs of zip archives and of fresh memory.

Before every task, PySpark's worker calls ``importlib.invalidate_caches()`` (``setup_spark_files``).
On Python 3.11 that makes every ``zipimporter`` in ``sys.path_importer_cache`` read its archive's
whole directory again: pyspark.zip (about 1,300 entries) once for each pyspark package imported
from it, and the spark-core jar (about 5,400 entries) that Spark puts on the workers'
``PYTHONPATH``. Measured here, that is about 150 ms before each task starts, most of an empty
job's cost and about a sixth of an incremental backfill day. The archives do not change while
a worker lives, so each importer here reads its archive again only when the file's size or
modification time changed.

Spark also puts the archives first on the workers' path, so with pyspark installed by pip every
worker process imports pyspark from pyspark.zip, compiling its modules from source (the zip holds
no bytecode): importing ``pyspark.worker`` takes about 0.9 s that way against 0.2 s from
site-packages. When those archives lie inside the installed pyspark package itself (the same
code), they are moved behind it on ``sys.path``; a Spark distribution without a pip-installed
pyspark keeps its path as it is.

Workers also run numpy without transparent huge pages (``NUMPY_MADVISE_HUGEPAGE=0``, unless the
environment sets it). numpy asks the kernel for huge pages on every large array; with Linux's
default ``transparent_hugepage/defrag = madvise`` such a page fault may stall while the kernel
compacts memory. In a backfill bucket task that was most of its system time: 1.85 s in an
8.4 s task; without huge pages about 1.05 s, and the task took 7.75 s (medians of 3, alternating).

And freed memory stays with the worker (glibc's ``mallopt``: no ``mmap`` for big blocks, trim
only past ``KEPT_FREE_BYTES``), so the next big array reuses pages instead of faulting in fresh
zeroed ones: a task allocates and frees gigabytes of short-lived arrays. In a backfill bucket
task that took another 0.3-0.5 s off (7.75 -> 7.26 s; page faults while reading the source
143,000 -> 40,000). Spark stops a reused
worker after a minute without work, which gives the memory back. Nothing else differs from
``pyspark.daemon``.

Spark starts it as ``python -m chronon_cli.engines.spark.worker_daemon pyspark.worker`` when
``spark.python.daemon.module`` names it (``session.DEFAULT_CONF``; a profile may set it back to
``pyspark.daemon``). Executors need chronon_cli installed, as they do for the tasks themselves.
"""
import os
import sys
import zipimport
from typing import Any, Optional, Tuple

_reread = zipimport.zipimporter.invalidate_caches
_STAMP = "_chronon_archive_stamp"


def _stamp(archive: str) -> Optional[Tuple[int, int]]:
    try:
        stat = os.stat(archive)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def invalidate_if_changed(importer: Any) -> None:
    """``zipimporter.invalidate_caches``, skipped while the archive file is unchanged."""
    stamp = _stamp(importer.archive)
    if stamp is not None and getattr(importer, _STAMP, None) == stamp:
        return
    _reread(importer)
    setattr(importer, _STAMP, stamp)


def keep_zip_directories() -> None:
    """Patch ``zipimporter`` in this process (and the workers it forks); the importers that exist
    already read their archives when they were made, so they count as fresh."""
    zipimport.zipimporter.invalidate_caches = invalidate_if_changed
    for importer in list(sys.path_importer_cache.values()):
        if isinstance(importer, zipimport.zipimporter):
            setattr(importer, _STAMP, _stamp(importer.archive))


def _installed_pyspark() -> Optional[str]:
    """The folder of a pip-installed pyspark package on ``sys.path`` (not one inside an archive)."""
    for entry in sys.path:
        folder = os.path.join(entry or ".", "pyspark")
        if os.path.isfile(os.path.join(folder, "__init__.py")):
            return os.path.realpath(folder)
    return None


def prefer_installed_pyspark() -> None:
    """Move the archives that belong to the installed pyspark package behind it on ``sys.path``."""
    installed = _installed_pyspark()
    if installed is None:
        return
    inside = [e for e in sys.path if os.path.isfile(e) and os.path.realpath(e).startswith(installed + os.sep)]
    sys.path[:] = [e for e in sys.path if e not in inside] + inside


def no_numpy_huge_pages() -> None:
    """Workers forked from here import numpy with ``NUMPY_MADVISE_HUGEPAGE=0`` (unless set already)."""
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


KEPT_FREE_BYTES = 2 << 30
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4


def keep_freed_memory() -> bool:
    """Tell glibc's allocator of this process (and the workers it forks) to keep freed memory;
    False where there is no ``mallopt`` (not glibc)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in (
        (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, KEPT_FREE_BYTES), (_M_TOP_PAD, 64 << 20)))


def main() -> None:
    no_numpy_huge_pages()
    keep_freed_memory()
    prefer_installed_pyspark()
    from pyspark import daemon  # imports the worker module named in sys.argv[1]

    keep_zip_directories()
    daemon.manager()


if __name__ == "__main__":
    main()
