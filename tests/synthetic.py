"""Moved to `bench.synthetic` (the benchmarks and the tests share one generator); kept so older imports work."""

from bench.synthetic import NEEDS, SmallArea, load_small_areas, make_services

__all__ = ["NEEDS", "SmallArea", "load_small_areas", "make_services"]
