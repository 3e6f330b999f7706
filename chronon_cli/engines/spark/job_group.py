"""Running Spark jobs under a job group of their own, to wait for their last task after a failure.

When one task of a job fails, Spark aborts the job and reports the error on the driver at once,
while the job's other running tasks are only marked killed: each goes on until its Python worker
returns (its files closed) or is destroyed (``spark.python.task.killTimeout`` after the kill).
Files such a task writes after the driver cleaned up would be left behind, so a failed write
first waits, through the status tracker, until no task of its jobs is active.

The status tracker reads Spark's status store, which a running stage updates at most every
``spark.ui.liveUpdate.period`` (a task started just after its stage may not show yet); once a
job failed, its stages are written as they end and again when their last task ends, so the count
is exact for what ``wait_for_tasks`` is for: the tasks a failed job left running.
"""
import contextlib
import time
import uuid
from typing import Any, Iterator

GROUP_PROPERTY = "spark.jobGroup.id"
DESCRIPTION_PROPERTY = "spark.job.description"
INTERRUPT_PROPERTY = "spark.job.interruptOnCancel"


@contextlib.contextmanager
def job_group(spark: Any, description: str) -> Iterator[str]:
    """Jobs started in this block (on this thread) run in a new job group, whose id is yielded;
    the group, description and interrupt flag set before are restored afterwards. Tasks are not
    interrupted on cancel, so a killed task's JVM thread ends only after its Python worker did."""
    sc = spark.sparkContext
    saved = {key: sc.getLocalProperty(key) for key in (GROUP_PROPERTY, DESCRIPTION_PROPERTY, INTERRUPT_PROPERTY)}
    group = f"chronon-{uuid.uuid4().hex[:12]}"
    sc.setJobGroup(group, description, interruptOnCancel=False)
    try:
        yield group
    finally:
        for key, value in saved.items():
            sc.setLocalProperty(key, value)


def active_tasks(spark: Any, group: str) -> int:
    """Tasks of the group's jobs that have started and not ended (as the status tracker knows)."""
    tracker = spark.sparkContext.statusTracker()
    count = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in (job.stageIds if job else ()):
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                count += stage.numActiveTasks
    return count


def _flush_listener_events(spark: Any, timeout_ms: int) -> None:
    """Let the status tracker catch up with the scheduler's events (the listener bus is
    asynchronous); best effort: ``waitUntilEmpty`` is Spark-internal, reached through py4j."""
    try:
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(timeout_ms)
    except Exception:
        time.sleep(0.5)


def wait_for_tasks(spark: Any, group: str, timeout: float, poll: float = 0.1) -> bool:
    """Wait until no task of the group is active; False when ``timeout`` seconds passed first."""
    deadline = time.monotonic() + timeout
    _flush_listener_events(spark, int(min(timeout, 30.0) * 1000))
    while active_tasks(spark, group) > 0:
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True
