"""spec.derived: which base columns Chronon's ``*`` keeps and which ones derivation expressions read
(what the backfill sends through Spark for them)."""
from ai.chronon.group_by import Derivation

from chronon_cli.spec.derived import derivation_projection, kept_base_columns, referenced_columns

BASE = ["price_sum_7d", "price_count_7d", "price_last3_7d", "n_max_1d"]


def test_star_keeps_every_base_column_but_renamed_ones():
    derivations = [Derivation(name="*", expression="*"), Derivation(name="events_7d", expression="price_count_7d"),
                   Derivation(name="avg_7d", expression="price_sum_7d / price_count_7d")]
    assert kept_base_columns(derivations, BASE) == ["price_sum_7d", "price_last3_7d", "n_max_1d"]
    assert derivation_projection(derivations, BASE) == [
        ("price_sum_7d", "price_sum_7d"), ("price_last3_7d", "price_last3_7d"), ("n_max_1d", "n_max_1d"),
        ("events_7d", "price_count_7d"), ("avg_7d", "price_sum_7d / price_count_7d")]


def test_without_star_nothing_is_kept():
    assert kept_base_columns([Derivation(name="x", expression="n_max_1d")], BASE) == []


def test_expressions_read_the_columns_they_spell_in_any_case():
    derivations = [Derivation(name="*", expression="*"),
                   Derivation(name="avg_7d", expression="try_divide(PRICE_SUM_7D, `price_count_7d`) * 2")]
    assert referenced_columns(derivations, BASE) == ["price_sum_7d", "price_count_7d"]


def test_a_name_inside_a_longer_name_is_not_a_reference():
    assert referenced_columns([Derivation(name="x", expression="n_max_1d_extra + 1")], BASE) == []


def test_a_star_column_reference_reads_every_column():
    for expression in ["to_json(struct(*))", "hash(price_sum_7d, *)", "concat_ws(',', t.*)"]:
        assert referenced_columns([Derivation(name="x", expression=expression)], BASE) == BASE, expression


def test_multiplication_is_not_a_star_reference():
    assert referenced_columns([Derivation(name="x", expression="n_max_1d * 2 * price_sum_7d")], BASE) == \
        ["price_sum_7d", "n_max_1d"]


def test_a_derivation_named_like_a_base_column_replaces_it():
    derivations = [Derivation(name="*", expression="*"), Derivation(name="n_max_1d", expression="n_max_1d * 2")]
    assert kept_base_columns(derivations, BASE) == ["price_sum_7d", "price_count_7d", "price_last3_7d"]
    assert [name for name, _ in derivation_projection(derivations, BASE)] == [
        "price_sum_7d", "price_count_7d", "price_last3_7d", "n_max_1d"]
