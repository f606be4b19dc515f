"""England's ONS code, named once for every layer: a national source (CQC) covers it, a review count is kept
for it beside each local area, and the gaps pages and exports take it as the whole country."""

ENGLAND = "E92000001"
