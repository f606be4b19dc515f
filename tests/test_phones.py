"""A number of digits alone is grouped as the first number of its first eight characters and length was
(`rehabmap.phones.phone_text`, which the pages and the CSV share): the groups must be libphonenumber's own for
every such number, which this checks against the library called directly for each number (`_formatted`, the
table's own source, without the table), on UK numbers of every first digit and length, in an order that fills
the groups' table from other numbers first."""

from __future__ import annotations

import random

from rehabmap.phones import _formatted, phone_cell, phone_text


def test_numbers_grouped_alike_are_grouped_as_the_library_groups_each():
    draw = random.Random(20261202)
    numbers = [f"0{draw.choice('12378')}{''.join(draw.choices('0123456789', k=draw.choice((8, 9))))}"
               for _ in range(4000)]
    numbers += ["01623420690", "01134960000", "02079460000", "01162620075", "08001234567", "07700900123"]
    wrong = [(n, phone_text(n), _formatted(n)) for n in numbers if phone_text(n) != _formatted(n)]
    assert not wrong, wrong[:5]
    assert [phone_cell(n) for n in numbers[-6:]] == [_formatted(n) for n in numbers[-6:]]
    assert (phone_cell("0113 496 0000"), phone_cell("ext 12")) == ("0113 496 0000", "ext 12"), "kept as given"
