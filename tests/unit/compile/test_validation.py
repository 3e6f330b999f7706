"""Every validation rule: a bad config gives a message naming file, object and field; nothing is written."""
import pytest

GOOD_SOURCE = """
    source = Source(events=EventSource(
        table="data.purchases",
        query=Query(selects=select("user_id", "purchase_price", "category"), time_column="ts")))
"""


def assert_refused(result, repo, *needles):
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.output, f"{needle!r} not in:\n{result.output}"
    assert repo.written() == []


def test_ts_in_selects_is_refused(repo):
    repo.write("group_bys/team/bad.py", """
    source = Source(events=EventSource(table="data.t", query=Query(selects=select("user_id", "x", "ts"))))
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="x", operation=Operation.SUM)])
    """)
    result = repo.compile("group_bys/team/bad.py")
    assert_refused(result, repo, "bad.py", "team.bad.v1", "sources[0].query.selects", "'ts' is a reserved", "time_column")


def test_temporal_windowed_aggregation_without_time_column(repo):
    repo.write("group_bys/team/bad.py", """
    source = Source(events=EventSource(table="data.t", query=Query(selects=select("user_id", "x"))))
    v1 = GroupBy(sources=[source], keys=["user_id"], accuracy=Accuracy.TEMPORAL,
                 aggregations=[Aggregation(input_column="x", operation=Operation.SUM, windows=["7d"])])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "team.bad.v1", "aggregations[0].windows",
                   "time_column")


def test_timed_aggregation_without_time_column_on_streaming_source(repo):
    repo.write("group_bys/team/bad.py", """
    source = Source(events=EventSource(table="data.t", topic="events.t", query=Query(selects=select("user_id", "x"))))
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="x", operation=Operation.LAST)])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "aggregations[0].operation", "time_column")


def test_hour_window_with_snapshot_accuracy(repo):
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["user_id"], accuracy=Accuracy.SNAPSHOT,
                 aggregations=[Aggregation(input_column="purchase_price", operation=Operation.SUM,
                                           windows=["7d", "12h"])])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "aggregations[0].windows[1]", "12h",
                   "SNAPSHOT")


def test_key_not_selected_suggests_nearest(repo):
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["userid"],
                 aggregations=[Aggregation(input_column="purchase_price", operation=Operation.SUM)])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "field keys", "'userid' is not selected",
                   "did you mean 'user_id'?")


def test_input_column_typo_suggests_nearest(repo):
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="purchase_prise", operation=Operation.SUM)])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "aggregations[0].input_column",
                   "did you mean 'purchase_price'?")


def test_bucket_not_selected(repo):
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="purchase_price", operation=Operation.SUM,
                                           buckets=["categroy"])])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "aggregations[0].buckets[0]",
                   "did you mean 'category'?")


def test_unknown_operation_suggests_nearest_and_shows_location(repo):
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="purchase_price", operation=Operation.AVERGE)])
    """)
    result = repo.compile("group_bys/team/bad.py")
    assert_refused(result, repo, "Operation has no member 'AVERGE'", "did you mean 'AVERAGE'?", "bad.py:")


def test_operation_given_as_string_is_refused_with_suggestion(repo):
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="purchase_price", operation="sum")])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "aggregations[0].operation",
                   "unknown operation 'sum'", "did you mean 'SUM'?")


def test_aggregations_none_on_event_source(repo):
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["user_id"], aggregations=None)
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "field aggregations", "entity sources")


def test_aggregations_none_on_entity_source_is_fine(repo):
    repo.write("group_bys/team/users.py", """
    source = Source(entities=EntitySource(snapshotTable="data.users",
                                          query=Query(selects=select("user_id", "country"))))
    v1 = GroupBy(sources=[source], keys=["user_id"], aggregations=None)
    """)
    result = repo.compile("group_bys/team/users.py")
    assert result.exit_code == 0, result.output
    assert [str(p) for p in repo.written()] == ["group_bys/team/users.v1"]


@pytest.mark.parametrize("percentiles", ["[0.5, 1.5]", "[-0.1]"])
def test_percentiles_outside_unit_interval(repo, percentiles):
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + f"""
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="purchase_price",
                                           operation=Operation.APPROX_PERCENTILE({percentiles}))])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "aggregations[0].operation", "within [0, 1]")


def test_mixed_select_sets_across_sources(repo):
    repo.write("group_bys/team/bad.py", """
    a = Source(events=EventSource(table="data.a", query=Query(selects=select("user_id", "x"), time_column="ts")))
    b = Source(events=EventSource(table="data.b", query=Query(selects=select("user_id", "y"), time_column="ts")))
    v1 = GroupBy(sources=[a, b], keys=["user_id"],
                 aggregations=[Aggregation(input_column="x", operation=Operation.SUM)])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "sources[1].query.selects",
                   "same columns", "x, y")


def test_snapshot_group_by_with_streaming_source(repo):
    repo.write("group_bys/team/bad.py", """
    source = Source(events=EventSource(table="data.t", topic="events.t",
                                       query=Query(selects=select("user_id", "x"), time_column="ts")))
    v1 = GroupBy(sources=[source], keys=["user_id"], accuracy=Accuracy.SNAPSHOT,
                 aggregations=[Aggregation(input_column="x", operation=Operation.SUM)])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "sources[0]", "streaming source")


def test_bad_window_string_is_reported_with_location(repo):
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="purchase_price", operation=Operation.SUM,
                                           windows=["7days"])])
    """)
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "bad.py:", "invalid window '7days'", "'12h'")


def test_import_failure_reports_traceback_location(repo):
    path = repo.write("group_bys/team/broken.py", """
    x = 1
    raise RuntimeError("boom")
    """)
    result = repo.compile("group_bys/team/broken.py")
    line = path.read_text().splitlines().index('raise RuntimeError("boom")') + 1
    assert_refused(result, repo, f"broken.py:{line}", "RuntimeError: boom")


def test_unknown_staging_query_macro(repo):
    repo.write("staging_queries/team/sq.py", """
    from ai.chronon.staging_query import StagingQuery
    v1 = StagingQuery(query="SELECT * FROM t WHERE ds BETWEEN '{{ start_date }}' AND '{{ end_dt }}'")
    """, header=False)
    assert_refused(repo.compile("staging_queries/team/sq.py"), repo, "team.sq.v1", "field query",
                   "unknown macro '{{end_dt}}'")


def test_one_bad_object_blocks_the_whole_run(repo):
    repo.write("group_bys/team/good.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="purchase_price", operation=Operation.SUM)])
    """)
    repo.write("group_bys/team/bad.py", GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["nobody"],
                 aggregations=[Aggregation(input_column="purchase_price", operation=Operation.SUM)])
    """)
    assert_refused(repo.compile("group_bys"), repo, "bad.py", "'nobody' is not selected")


def test_config_outside_a_kind_folder(repo):
    repo.write("features/team/x.py", "x = 1\n", header=False)
    assert_refused(repo.compile("features/team/x.py"), repo, "must sit under")


def test_online_object_change_needs_version_bump_or_force(repo):
    body = GOOD_SOURCE + """
    v1 = GroupBy(sources=[source], keys=["user_id"], online=True,
                 aggregations=[Aggregation(input_column="purchase_price", operation=Operation.{op})])
    """
    repo.write("group_bys/team/online.py", body.format(op="SUM"))
    assert repo.compile("group_bys/team/online.py").exit_code == 0
    compiled = repo.production / "group_bys/team/online.v1"
    before = compiled.read_text()

    repo.write("group_bys/team/online.py", body.format(op="MAX"))
    result = repo.compile("group_bys/team/online.py")
    assert result.exit_code == 2
    assert "bump the version" in result.output and "--force-overwrite" in result.output
    assert compiled.read_text() == before

    result = repo.compile("group_bys/team/online.py", "--force-overwrite")
    assert result.exit_code == 0, result.output
    assert '"operation": 1' in compiled.read_text()


DERIVED = GOOD_SOURCE + """
    from ai.chronon.group_by import Derivation
    v1 = GroupBy(sources=[source], keys=["user_id"],
                 aggregations=[Aggregation(input_column="purchase_price", operation=Operation.SUM)],
                 derivations=[{derivations}])
"""


@pytest.mark.parametrize("derivations, needles", [
    ('Derivation(name="*", expression="purchase_price_sum * 2")',
     ["derivations[0].expression", "'*' is only Derivation(name='*', expression='*')"]),
    ('Derivation(name="doubled", expression="*")', ["derivations[0].name", "'*' is only"]),
    ('Derivation(name="*", expression="*"), Derivation(name="*", expression="*")',
     ["derivations[1].name", "'*' is given twice"]),
    ('Derivation(name="2x", expression="purchase_price_sum * 2")', ["derivations[0].name", "'2x' is not a column name"]),
    ('Derivation(name="user_id", expression="purchase_price_sum")',
     ["derivations[0].name", "'user_id' is a key or partition column", "pick another name"]),
    ('Derivation(name="ds", expression="purchase_price_sum")', ["derivations[0].name", "'ds' is a key or partition"]),
    ('Derivation(name="a", expression="purchase_price_sum"), Derivation(name="a", expression="1")',
     ["derivations[1].name", "'a' is derived twice"]),
    ('Derivation(name="a", expression="  ")', ["derivations[0].expression", "non-empty expression"]),
    ('"purchase_price_sum * 2"', ["derivations[0]", "expected Derivation(name=..., expression=...), got str"]),
])
def test_bad_derivation_is_refused(repo, derivations, needles):
    repo.write("group_bys/team/bad.py", DERIVED.replace("{derivations}", derivations))
    assert_refused(repo.compile("group_bys/team/bad.py"), repo, "bad.py", "team.bad.v1", *needles)


def test_good_derivations_compile(repo):
    repo.write("group_bys/team/good.py", DERIVED.replace(
        "{derivations}", 'Derivation(name="*", expression="*"), '
                         'Derivation(name="price_doubled", expression="purchase_price_sum * 2")'))
    result = repo.compile("group_bys/team/good.py")
    assert result.exit_code == 0, result.output
    assert repo.written() != []
