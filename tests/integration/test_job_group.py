"""engines.spark.job_group on Spark local mode: the group is set for the block's jobs only and the
active-task count comes from the real status tracker."""
import time

import pytest

from chronon_cli.engines.spark.job_group import active_tasks, job_group, wait_for_tasks

pytestmark = pytest.mark.spark


def test_the_callers_group_is_restored(spark):
    sc = spark.sparkContext
    sc.setJobGroup("callers-group", "the caller's jobs")
    try:
        with job_group(spark, "inner") as group:
            assert sc.getLocalProperty("spark.jobGroup.id") == group != "callers-group"
            sc.parallelize(range(4), 2).count()
        assert sc.getLocalProperty("spark.jobGroup.id") == "callers-group"
        assert sc.getLocalProperty("spark.job.description") == "the caller's jobs"
        assert len(sc.statusTracker().getJobIdsForGroup(group)) == 1
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)


def test_after_a_failed_job_wait_for_tasks_returns_once_its_last_task_ended(spark):
    """Task 0 fails at once and Spark reports the failure while task 1 still sleeps."""
    def task(index, _):
        if index == 0:
            raise RuntimeError("task 0 fails")
        time.sleep(3)
        return [index]

    with job_group(spark, "one fails, one sleeps") as group:
        with pytest.raises(Exception, match="task 0 fails"):
            spark.sparkContext.parallelize(range(2), 2).mapPartitionsWithIndex(task).collect()
        failed_at = time.monotonic()
    assert not wait_for_tasks(spark, group, timeout=0.2)
    assert active_tasks(spark, group) == 1
    assert wait_for_tasks(spark, group, timeout=60)
    assert active_tasks(spark, group) == 0
    assert time.monotonic() - failed_at > 1.0
