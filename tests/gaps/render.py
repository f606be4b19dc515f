"""Render the SVG maps to PNG, for checking them by eye (tests) and for the screenshots in docs/img.

    python -m tests.gaps.render            # rewrites docs/img/gaps-*.png from a realistic 10k corpus

Needs cairosvg (pip) and the cairo library (Debian libcairo2, present on the standard image).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS_IMG = ROOT / "docs" / "img"


def svg_to_png(svg: str, path: Path, scale: float = 1.0) -> Path:
    import cairosvg

    path.parent.mkdir(parents=True, exist_ok=True)
    cairosvg.svg2png(bytestring=svg.encode("utf-8"), write_to=str(path), scale=scale)
    return path


def png_summary(path: Path) -> tuple[tuple[int, int], int]:
    """(width, height) and the number of distinct colours: a blank or broken render has very few."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
        return rgb.size, len(colours) if colours is not None else 1 << 20


def main() -> None:
    import tempfile
    from datetime import date

    from bench.synthetic import REALISTIC_MIX, load_small_areas, make_services
    from geodata.build import build_geodata
    from geodata.geography import Geography
    from rehabmap.config import Settings
    from rehabmap.gaps.analysis import GapAnalysis, ServicePoints
    from rehabmap.gaps.categories import parse_category
    from rehabmap.gaps.maps import area_map, overview_map
    from rehabmap.gaps.population import LsoaBoundaries, SmallAreas

    data_dir = Settings().data_dir
    services = make_services(load_small_areas(data_dir), 10_000, seed=2026, today=date(2026, 11, 23),
                             mix=REALISTIC_MIX)
    analysis = GapAnalysis(SmallAreas.load(data_dir), ServicePoints.from_services(services))
    with tempfile.TemporaryDirectory() as tmp:
        geodata_dir = Path(tmp) / "geodata"
        build_geodata(data_dir, geodata_dir, progress=False)
        areas = Geography(geodata_dir).areas
        code = "E54000054"
        members = analysis.small_areas.members(code)
        inner = {c: areas.get(c).geometry for c in sorted(set(analysis.small_areas.la[members].tolist()))}
        svg = area_map(analysis, code, parse_category("community_rehab_team"), LsoaBoundaries.load(data_dir),
                       areas.get(code).geometry, inner)
        print(svg_to_png(svg, DOCS_IMG / "gaps-area-map-west-yorkshire.png"))
        svg = area_map(analysis, "E06000052", parse_category("inpatient_rehab_level2"),
                       LsoaBoundaries.load(data_dir), areas.get("E06000052").geometry)
        print(svg_to_png(svg, DOCS_IMG / "gaps-area-map-cornwall.png"))
        geometries = {a.code: a.geometry for a in areas.areas("icb")}
        svg = overview_map(analysis, parse_category("inpatient_rehab_level2"), "mean_km", geometries)
        print(svg_to_png(svg, DOCS_IMG / "gaps-england-icb-map.png"))


if __name__ == "__main__":
    main()
