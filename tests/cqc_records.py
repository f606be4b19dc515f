"""The real CQC locations the tests name, from the recorded CQC API (../shared/data/feeds/cqc_api): each as CQC's
location id (the bare name, as the API and CQC's files give it) and as the directory's service id (`_ID`, the
`cqc:` source prefix before it), with the postcode its record gives. Not a test module: importing it brings no tests
or fixtures along (the sync, web and maintainers' tests each named these before, some bare, some prefixed)."""

from __future__ import annotations

# Field House (Elysium): the one mental health hospital among the 103 real records, 8 beds, a long-stay/rehab ward
# area: an inferred candidate.
FIELD_HOUSE = "1-112845365"
FIELD_HOUSE_ID = f"cqc:{FIELD_HOUSE}"
FIELD_HOUSE_POSTCODE = "DE55 7DT"
# Dovetail House, Mansfield: a care home registered for mental health.
DOVETAIL = "1-112779585"
DOVETAIL_ID = f"cqc:{DOVETAIL}"
DOVETAIL_POSTCODE = "NG18 2AT"
# Ashton Lodge Residential Home, Leicester: a care home registered for mental health, 27 beds as CQC recorded it.
ASHTON = "1-112816741"
ASHTON_ID = f"cqc:{ASHTON}"
# Grovelands Lodge, Wickford: a care home registered for mental health.
GROVELANDS = "1-112778525"
GROVELANDS_ID = f"cqc:{GROVELANDS}"
