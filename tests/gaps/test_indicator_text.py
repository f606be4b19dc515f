"""How an indicator reads to a person (`rehabmap.gaps.indicators`): a figure above none, or short of all, never
reads as none or all once rounded, in either of the two roundings the faces use (one decimal; whole percent in
the pages' tables, `whole`)."""

from __future__ import annotations

import pytest

from rehabmap.gaps.indicators import indicator_text, share_text


@pytest.mark.parametrize(("value", "whole", "text"), [
    # None and all read so; only they do.
    (0.0, False, "0.0%"), (0.0, True, "0%"), (1.0, False, "100.0%"), (1.0, True, "100%"),
    # Short of all: one decimal gives way at 99.95%, whole percent at 99.5% (0.996 read "100%" in the tables).
    (0.996, True, ">99%"), (0.995, True, ">99%"), (0.9949, True, "99%"), (0.996, False, "99.6%"),
    (0.9996, False, ">99.9%"), (0.9994, False, "99.9%"),
    # Above none: whole percent is not used under 10%, so the tables' floor is one decimal's.
    (0.0004, False, "<0.1%"), (0.0004, True, "<0.1%"), (0.0005, False, "0.1%"), (0.004, True, "0.4%"),
    (0.879, True, "88%"), (0.879, False, "87.9%"),
])
def test_a_share_reads_as_none_or_all_only_where_it_is(value, whole, text):
    assert share_text(value, whole=whole) == text
    assert indicator_text("share_beyond_threshold", value, whole_shares=whole) == text


@pytest.mark.parametrize(("value", "text"), [(0.0, "0.00"), (0.002, "<0.01"), (0.0049, "<0.01"), (0.005, "0.01"),
                                             (0.12, "0.12")])
def test_a_rate_above_none_never_reads_as_none(value, text):
    assert indicator_text("per_100k_adults", value) == text
