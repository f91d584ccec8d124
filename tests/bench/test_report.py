"""The bench's table says how each figure stands against its target, ceilings (lower is better) included."""

from bench.report import Row


def ceiling(value: float) -> Row:
    return Row("1", "worker: behind when the load stopped", value, "s", "", 1, higher_is_better=False)


def test_a_figure_under_its_ceiling_is_ok_with_the_margin_and_one_over_it_is_a_miss():
    assert (ceiling(0.25).value_text(), ceiling(0.25).target_text(), ceiling(0.25).ratio_text()) == (
        "0.2 s",
        "<= 1 s",
        "4.00x ok",
    )
    assert ceiling(1.5).ratio_text() == "0.67x MISS"


def test_nothing_against_a_ceiling_is_ok_without_a_ratio():
    assert ceiling(0).ratio_text() == "ok"
