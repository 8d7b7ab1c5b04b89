"""tasks/labels.py: the display names people read, in the order they read them."""

from __future__ import annotations

from tasks.labels import fraction_label, method_label, methods_in_order


def test_fractions_read_as_percentages_from_floats_or_the_metrics_keys():
    assert [fraction_label(f) for f in (0.01, 0.005, "1.0", 0.1)] == ["1%", "0.5%", "100%", "10%"]


def test_known_methods_come_first_in_display_order_then_the_rest_as_given():
    got = methods_in_order(["zeta", "raw_pixels", "alpha", "simclr"])
    assert got == ["simclr", "raw_pixels", "zeta", "alpha"]
    assert [method_label(m) for m in got] == ["SimCLR", "raw pixels", "zeta", "alpha"]
