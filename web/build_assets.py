"""Vendor the NHS.UK frontend's compiled CSS, JS and the icons its CSS uses into web/static/nhsuk/.

Run after `npm ci` (or `npm install`) whenever package.json changes:

    python web/build_assets.py          # copy from node_modules, write VERSION.json
    python web/build_assets.py --check  # exit 1 if web/static/nhsuk differs from what a build would write

The copies are committed, so `pip install -e .` serves styled pages without npm. Two edits are made to the
stylesheet so that a page never asks a third party for anything: the @font-face rules (which load the
NHS-licensed Frutiger font from assets.nhs.uk) are removed, so text falls back to Arial as NHS.UK
intends when the font is absent; and the icon URLs (`/assets/images/…`) are made relative to the
stylesheet. Source-map comments are dropped (the maps are not vendored).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "node_modules" / "nhsuk-frontend"
DIST = PACKAGE / "dist" / "nhsuk"
OUT = Path(__file__).resolve().parent / "static" / "nhsuk"

_FONT_FACE = re.compile(r"@font-face\{[^}]*\}")
_SOURCE_MAP = re.compile(r"\n?/[*/][#@] sourceMappingURL=[^\n]*?(\*/)?\s*$")
_URL = re.compile(r"url\(([^)]*)\)")


def _css(text: str) -> str:
    text = _FONT_FACE.sub("", text)
    text = text.replace("url(/assets/images/", "url(images/")
    text = _SOURCE_MAP.sub("", text)
    external = [u for u in _URL.findall(text) if not u.strip("'\"").startswith(("images/", "data:", "#"))]
    if external:
        raise SystemExit(f"nhsuk-frontend CSS refers to URLs this script does not vendor: {external}")
    return text


def _js(text: str) -> str:
    return _SOURCE_MAP.sub("", text) + "\n"


def _icons(css: str) -> list[str]:
    return sorted({m.split("/", 1)[1] for m in _URL.findall(css) if m.startswith("images/")})


def build() -> dict[str, bytes]:
    """Every vendored file (path relative to OUT) and its bytes, built in memory from node_modules."""
    if not DIST.is_dir():
        raise SystemExit(f"{DIST} not found: run `npm ci` in {ROOT} first.")
    version = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))["version"]
    css = _css((DIST / "nhsuk-frontend.min.css").read_text(encoding="utf-8"))
    files: dict[str, bytes] = {
        "nhsuk-frontend.min.css": css.encode(),
        "nhsuk-frontend.min.js": _js((DIST / "nhsuk-frontend.min.js").read_text(encoding="utf-8")).encode(),
    }
    for name in _icons(css):
        files[f"images/{name}"] = (DIST / "assets" / "images" / name).read_bytes()
    manifest = {
        "package": "nhsuk-frontend",
        "version": version,
        "licence": "MIT (code); documentation © NHS England, OGL 3.0",
        "built_by": "web/build_assets.py",
        "changes": "CSS: @font-face rules removed (no third-party font requests), icon URLs made relative, "
                   "source-map comments removed",
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files["VERSION.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def differences(files: dict[str, bytes]) -> list[str]:
    wanted = set(files)
    present = {p.relative_to(OUT).as_posix() for p in OUT.rglob("*") if p.is_file()} if OUT.is_dir() else set()
    problems = [f"missing {n}" for n in sorted(wanted - present)]
    problems += [f"unexpected {n}" for n in sorted(present - wanted)]
    problems += [f"differs {n}" for n in sorted(wanted & present) if (OUT / n).read_bytes() != files[n]]
    return problems


def write(files: dict[str, bytes]) -> None:
    for name in {p.relative_to(OUT).as_posix() for p in OUT.rglob("*") if p.is_file()} - set(files) \
            if OUT.is_dir() else ():
        (OUT / name).unlink()
    for name, data in files.items():
        path = OUT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        problems = differences(files)
        for problem in problems:
            print(f"web/static/nhsuk: {problem}", file=sys.stderr)
        if problems:
            print("Run `python web/build_assets.py` to refresh the vendored assets.", file=sys.stderr)
        return 1 if problems else 0
    write(files)
    version = json.loads(files["VERSION.json"])["version"]
    print(f"vendored nhsuk-frontend {version}: {len(files)} files in {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
