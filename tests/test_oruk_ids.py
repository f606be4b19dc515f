"""The ORUK feed's ids (rehabmap.oruk): RFC 4122 version 5 UUIDs in rehabmap's namespace, written without the
standard library's `UUID` object since session 34, held here to `str(uuid.uuid5(...))` itself."""

from __future__ import annotations

import random
import uuid

from rehabmap import oruk
from rehabmap.oruk import _NAMESPACE, _term_uuid, _uuid, service_at_location_uuid, service_uuid


def test_an_id_is_the_standard_librarys_uuid5_of_its_key() -> None:
    rng = random.Random(34)
    alphabet = "abcXYZ019:/_-. é—ł中\U0001f600\x00\t"
    keys = ["", "service/synthetic:001026", "taxonomy/need", "service/cqc:1-112845365/attribute/need/autism/1",
            *("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(5000))]
    for key in keys:
        expected = str(uuid.uuid5(_NAMESPACE, key))
        assert _uuid(key) == expected == _term_uuid(key), key
        assert uuid.UUID(expected).version == 5
    assert service_uuid("x") == str(uuid.uuid5(_NAMESPACE, "service/x"))
    assert service_at_location_uuid("x") == str(uuid.uuid5(_NAMESPACE, "service/x/service_at_location"))


def test_the_namespace_is_the_one_every_published_id_was_made_in() -> None:
    # Pinned: a consumer syncing the feed matches records by these ids.
    assert str(_NAMESPACE) == str(uuid.uuid5(uuid.NAMESPACE_URL, "rehabmap:oruk"))
    assert service_uuid("sample:aire-valley-rehabilitation-unit") == str(
        uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "rehabmap:oruk"), "service/sample:aire-valley-rehabilitation-unit"))
    assert oruk._term_uuid.cache_info().maxsize == 4096  # bounded: terms come from sources too
