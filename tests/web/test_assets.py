"""The vendored NHS.UK frontend: present, recorded, identical to what the build script makes from
node_modules, and free of anything that would make a browser ask a third party."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from web import STATIC_DIR, build_assets

NHSUK = STATIC_DIR / "nhsuk"


def test_vendored_files_are_recorded_with_their_version_and_hashes():
    manifest = json.loads((NHSUK / "VERSION.json").read_text(encoding="utf-8"))
    assert manifest["package"] == "nhsuk-frontend"
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    for name in manifest["files"]:
        assert (NHSUK / name).is_file(), name


def test_vendored_files_match_node_modules():
    if not build_assets.DIST.is_dir():
        pytest.skip("node_modules/nhsuk-frontend not installed (run `npm ci`)")
    assert build_assets.differences(build_assets.build()) == []
    package = json.loads((build_assets.ROOT / "package.json").read_text(encoding="utf-8"))
    vendored = json.loads((NHSUK / "VERSION.json").read_text(encoding="utf-8"))["version"]
    assert package["dependencies"]["nhsuk-frontend"] == vendored


@pytest.mark.parametrize("path", sorted(p for p in STATIC_DIR.rglob("*") if p.suffix in (".css", ".js", ".svg")),
                         ids=lambda p: str(p.relative_to(STATIC_DIR)))
def test_static_files_name_no_other_site(path: Path):
    text = path.read_text(encoding="utf-8")
    urls = re.findall(r"url\(([^)]*)\)", text) + re.findall(r"""(?:import|from)\s*["']([^"']+)["']""", text)
    assert not [u for u in urls if re.match(r"['\"]?(https?:)?//", u)], urls
    assert "@font-face" not in text
    assert "sourceMappingURL" not in text
