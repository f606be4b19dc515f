"""The review queue over real synced records: Field House, the one mental health hospital among the 103 real
CQC records, is only a candidate inpatient unit. It is held (not shown) until a maintainer decides, the
decision is audited, it outlives re-syncs, and a later change in the source's evidence is flagged."""

from __future__ import annotations

from datetime import date

import pytest

from indexer.sync.review import DecidedOnChanged, ReviewQueue
from indexer.sync.store import SyncStore
from app.sync import open_live
from indexer.pipeline import GeographyPlacer
from rehabmap.maintain.store import Directory, store_of
from rehabmap.errors import InvalidValue, ServiceNotFound
from search.embedded import EmbeddedIndex, index_file
from rehabmap.match import MatchRequest, match
from rehabmap.taxonomy import ServiceType
from indexer.sync.connectors.cqc_files import RatingsFile
from tests.conftest import database_url
from tests.cqc_records import ASHTON, FIELD_HOUSE, FIELD_HOUSE_ID, FIELD_HOUSE_POSTCODE
from tests.sync.cqc_files import field_house_rated, file_connector
from tests.sync.store_fixtures import (
    ListedConnector,
    cqc_connector,
    field_house_item,
    index_record,
    make_home,
    retired_once_read,
    runner_for,
    settings_for,
)

MHA_SPECIALISM = {"name": "Caring for people whose rights are restricted under the Mental Health Act"}


@pytest.fixture
def settings(request, store_kind, tmp_path, geodata_dir, data_dir, replay):
    """A home whose store is the SQLite file, or PostgreSQL (each test runs on both)."""
    return settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay,
                        database_url=database_url(request, store_kind))


def sync(settings, geography, connector=None, **options):
    return runner_for(settings, geography).run(connector or cqc_connector(settings), **options)


def queue(settings, geography) -> ReviewQueue:
    placer = GeographyPlacer(geography)
    return ReviewQueue(SyncStore(store_of(settings)), open_live(settings, lambda: placer))


def level1_near_field_house(settings, geography) -> list[str]:
    home = geography.resolve(postcode=FIELD_HOUSE_POSTCODE)
    request = MatchRequest(types=(ServiceType.inpatient_rehab_level1,), limit=5)
    return [r.service.id for r in match(EmbeddedIndex(index_file(settings.home)), home, request, date.today()).results]


def test_an_accepted_candidate_is_shown_as_accepted_and_outlives_resyncs(synced, geography, replay):
    settings = synced  # after a first sync: a copy of the module's
    review = queue(settings, geography)
    [item] = review.items()
    assert (item.service_id, item.state, item.type_status, item.proposed_type) == (
        FIELD_HOUSE_ID, "pending", "inferred", "inpatient_rehab_level1")
    assert item.where.startswith(FIELD_HOUSE_POSTCODE) and "Amber Valley" in item.where
    assert [(e.field, e.means) for e in item.evidence][0] == (
        "gacServiceTypes", "a mental health hospital: a candidate inpatient rehabilitation unit")
    assert FIELD_HOUSE_ID not in level1_near_field_house(settings, geography)

    [accepted] = review.accept([FIELD_HOUSE_ID], actor="Ann (maintainer)", level=1)

    assert (accepted.state, accepted.decided_type, accepted.decided_by) == (
        "accepted", "inpatient_rehab_level1", "Ann (maintainer)")
    record = index_record(settings.home, FIELD_HOUSE_ID)
    assert record["service_type"] == "inpatient_rehab_level1" and record["status"] == "active"
    assert record["field_sources"]["service_type"] == "review"
    assert level1_near_field_house(settings, geography)[0] == FIELD_HOUSE_ID
    audit, _ = Directory.from_settings(settings).audit.entries(resource_id=FIELD_HOUSE_ID)
    assert [(a.actor, a.action, a.field, a.old, a.new) for a in audit] == [
        ("Ann (maintainer)", "accept", "review", "pending", "accepted"),
        ("Ann (maintainer)", "accept", "service_type", None, "inpatient_rehab_level1")]   # no "subtype: null → null"

    # A complete listing again, nothing changed: the decision stands and nothing is flagged.
    again = sync(settings, geography, full=True)
    assert again.evidence_changed == [] and again.held == []
    assert level1_near_field_house(settings, geography)[0] == FIELD_HOUSE_ID

    # The source's evidence changes (CQC now registers it for people detained under the Mental Health Act):
    # the decision stands, and the change is shown for another look.
    replay.cqc.alter(FIELD_HOUSE, specialisms=[*replay.cqc.records[FIELD_HOUSE]["specialisms"], MHA_SPECIALISM])
    changed = sync(settings, geography)
    assert [line.service_id for line in changed.evidence_changed] == [FIELD_HOUSE_ID]
    [flagged] = review.items(states=("accepted",), evidence_changed=True)
    assert flagged.service_id == FIELD_HOUSE_ID and any(e.field == "specialisms" for e in flagged.evidence)
    record = index_record(settings.home, FIELD_HOUSE_ID)
    assert record["service_type"] == "inpatient_rehab_level1" and "detained_mha" in record["needs_met"]


class EnrichmentsRead(SyncStore):
    """The store, noting the keys of the enrichments read."""

    def __init__(self, store):
        super().__init__(store)
        self.read = []

    def enrichments(self, **kwargs):
        found = super().enrichments(**kwargs)
        self.read += [e.key for e in found]
        return found


class EveryEnrichment(SyncStore):
    """The store giving every enrichment whatever keys are asked for: the queue as it was (the reference)."""

    def enrichments(self, *, active_only=True, keys=None):
        return super().enrichments(active_only=active_only)


def test_the_queue_reads_the_enrichments_of_the_records_it_lists_not_every_one(synced, geography, replay,
                                                                              data_dir, feeds_dir):
    """Before, each list of the queue and each item (a refusal's lookup; a decision, once per record decided) read
    every enrichment of the store, every ODS site's in a deployment. It reads those found by the keys of the records
    it lists, on the store's indexes, and gives the same items. Field House held, and the ratings file BUILT from its
    own rehab ward rating beside the real provider file's 49 providers (none of them its provider): one enrichment
    of 50 is Field House's, and it is the one read."""
    settings = synced  # after a first sync: a copy of the module's
    replay.serve_file("ratings.ods", field_house_rated(data_dir, feeds_dir))
    runner_for(settings, geography).run(file_connector(RatingsFile, replay, "ratings.ods"))
    store = EnrichmentsRead(store_of(settings))
    review, every = ReviewQueue(store), ReviewQueue(EveryEnrichment(store_of(settings)))
    rated = ("cqc-ratings", f"location:{FIELD_HOUSE}")
    assert len(store.enrichments()) == 50 and rated in store.read

    for read in (review.items, lambda: [review.item(FIELD_HOUSE_ID)]):
        store.read.clear()
        [item] = read()
        assert item == every.item(FIELD_HOUSE_ID) and store.read == [rated], "the one that matches, no other"
        assert "CQC rates a rehabilitation ward at Field House" in item.evidence[-1].means
    store.read.clear()
    review.reject([FIELD_HOUSE_ID], actor="Ann (maintainer)", reason="an acute ward")
    assert store.read == [rated]


def test_a_rejected_candidate_stays_out_through_resyncs(synced, geography):
    settings = synced  # after a first sync: a copy of the module's
    review = queue(settings, geography)
    review.accept([FIELD_HOUSE_ID], actor="Ann", level=2)
    assert index_record(settings.home, FIELD_HOUSE_ID)["service_type"] == "inpatient_rehab_level2"

    [rejected] = review.reject([FIELD_HOUSE_ID], actor="Bob", reason="  an acute ward,\nnot rehabilitation ")

    assert (rejected.state, rejected.reason) == ("rejected", "an acute ward, not rehabilitation")
    assert index_record(settings.home, FIELD_HOUSE_ID)["status"] == "inactive"
    assert FIELD_HOUSE_ID not in level1_near_field_house(settings, geography)
    sync(settings, geography, full=True)
    assert review.item(FIELD_HOUSE_ID).state == "rejected"
    assert index_record(settings.home, FIELD_HOUSE_ID)["status"] == "inactive"
    audit, _ = Directory.from_settings(settings).audit.entries(resource_id=FIELD_HOUSE_ID)
    assert [(a.action, a.field, a.new) for a in audit][-2:] == [
        ("reject", "review", "rejected"), ("reject", "review_reason", "an acute ward, not rehabilitation")]


def test_a_rejected_records_changes_do_not_stop_a_run_at_the_share_threshold(synced, geography, replay):
    """A record a maintainer rejected is shown nowhere: the source changing it changes nothing a person sees, so
    it counts toward neither side of the share a run may change (it used to stop a run at 1 of 7: 14%)."""
    settings = synced  # after a first sync: a copy of the module's
    queue(settings, geography).reject([FIELD_HOUSE_ID], actor="Bob", reason="an acute ward, not rehabilitation")
    replay.cqc.alter(FIELD_HOUSE, numberOfBeds=40)

    applied = sync(settings, geography, max_change_share=0.1)

    assert not applied.stopped and applied.share == 0
    assert SyncStore(store_of(settings)).record("cqc", FIELD_HOUSE).service["beds"] == 40
    assert index_record(settings.home, FIELD_HOUSE_ID) is None   # never shown
    # A change to a record that is shown still counts: 1 of the 6 others.
    replay.cqc.alter(ASHTON, numberOfBeds=30)
    stopped = sync(settings, geography, max_change_share=0.1)
    assert stopped.stopped and "17%" in stopped.stopped


def test_decisions_the_record_refuses_are_refused_and_change_nothing(synced, geography):
    settings = synced  # after a first sync: a copy of the module's
    review = queue(settings, geography)
    with pytest.raises(InvalidValue, match="Subtype 'imha' does not belong to supported_accommodation"):
        review.accept([FIELD_HOUSE_ID], actor="Ann", service_type="supported_accommodation", subtype="imha")
    # before, "Subtype '' does not belong to advocacy": a blank named as blank, as the API names it
    for blank in ("", " "):
        with pytest.raises(InvalidValue, match=r"^The subtype given is blank, which names no subtype of advocacy "
                                               r"\(allowed: imha, imca, care_act, community\)\.$"):
            review.accept([FIELD_HOUSE_ID], actor="Ann", service_type="advocacy", subtype=blank)
    with pytest.raises(InvalidValue, match="--level 2 means inpatient_rehab_level2, but --type says"):
        review.accept([FIELD_HOUSE_ID], actor="Ann", service_type="inpatient_rehab_level1", level=2)
    with pytest.raises(ServiceNotFound):
        review.accept(["cqc:1-000"], actor="Ann")
    # the source as people know it: it said "cqc confirms its type", the source's code
    with pytest.raises(InvalidValue, match=r"not in the review queue: Care Quality Commission \(CQC\) confirms its "):
        review.reject([f"cqc:{ASHTON}"], actor="Ann", reason="wrong")
    with pytest.raises(InvalidValue, match="Give a reason"):
        review.reject([FIELD_HOUSE_ID], actor="Ann", reason=" ")
    # All or nothing: one bad id in a batch stops the lot.
    with pytest.raises(ServiceNotFound):
        review.reject([FIELD_HOUSE_ID, "cqc:1-000"], actor="Ann", reason="not rehab")
    assert review.item(FIELD_HOUSE_ID).state == "pending"
    assert Directory.from_settings(settings).audit.entries(resource_id=FIELD_HOUSE_ID)[1] == 0
    assert index_record(settings.home, FIELD_HOUSE_ID) is None


def test_a_decision_on_a_record_a_run_retired_after_it_was_read_is_refused_and_the_retirement_stands(
        synced, geography):
    """A sync run committing between a decision's reading of Field House and its write (another process, at any
    moment): before, the decision wrote the record back whole as read, active, undoing the run's retirement, and
    a feed of changes alone would never retire it again. Now nothing is decided and the keeper is told why."""
    settings = synced  # after a first sync: a copy of the module's
    review = queue(settings, geography)
    retired_once_read(review.store, settings, FIELD_HOUSE_ID, "deregistered by CQC")
    with pytest.raises(DecidedOnChanged, match=r"^Field House changed at its source while you decided \(now retired: "
                                               r"deregistered by CQC\): look at it again; nothing was decided\.$"):
        review.accept([FIELD_HOUSE_ID], actor="Ann", level=1)
    [after] = SyncStore(store_of(settings)).records(service_ids=[FIELD_HOUSE_ID])
    assert (after.status, after.retired_reason) == ("retired", "deregistered by CQC")
    assert review.item(FIELD_HOUSE_ID).state == "pending"
    assert Directory.from_settings(settings).audit.entries(resource_id=FIELD_HOUSE_ID)[1] == 0
    assert DecidedOnChanged.status == 409
    review.reject([FIELD_HOUSE_ID], actor="Ann", reason="not rehab")  # read again, it is decided
    assert review.item(FIELD_HOUSE_ID).state == "rejected"


def test_a_record_of_unknown_type_needs_a_type_to_be_accepted(settings, geography, feeds_dir):
    unknown = field_house_item(feeds_dir, type_status="unknown", service_type=None)
    report = sync(settings, geography, ListedConnector([unknown]))
    assert [(line.service_id, line.note) for line in report.held] == [("listed:1-112845365",
                                                                        "unknown: no type proposed")]
    review = queue(settings, geography)
    with pytest.raises(InvalidValue, match="No type is proposed"):
        review.accept(["listed:1-112845365"], actor="Ann")
    [accepted] = review.accept(["listed:1-112845365"], actor="Ann", service_type="advocacy", subtype="imha")
    assert (accepted.decided_type, accepted.decided_subtype) == ("advocacy", "imha")
    record = index_record(settings.home, "listed:1-112845365")
    assert (record["service_type"], record["subtype"]) == ("advocacy", "imha")


def test_a_source_that_later_confirms_the_type_closes_the_pending_review(settings, geography, feeds_dir):
    inferred = field_house_item(feeds_dir, type_status="inferred", service_type=ServiceType.inpatient_rehab_level1)
    sync(settings, geography, ListedConnector([inferred]))
    assert queue(settings, geography).item("listed:1-112845365").state == "pending"
    assert index_record(settings.home, "listed:1-112845365") is None

    confirmed = field_house_item(feeds_dir, type_status="confirmed",
                                 service_type=ServiceType.inpatient_rehab_level2)
    report = sync(settings, geography, ListedConnector([confirmed]), force=True)  # its one record changes

    item = queue(settings, geography).item("listed:1-112845365")
    assert (item.state, item.reason) == ("superseded", "the source now confirms its type")
    assert report.awaiting_review == 0
    assert index_record(settings.home, "listed:1-112845365")["service_type"] == "inpatient_rehab_level2"
