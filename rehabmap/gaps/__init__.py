"""Gap analysis for commissioners (DESIGN.md §5): the small areas and their population, the indicators per
area and service type, the reports built from them, and the maps that draw them."""
