"""The compiled parts of rehabmap, each a CPython extension in plain C (docs/adr/0014): `search._pass`, the row loops
of a match's radius pass (search/_pass.c), and `api._json`, a reply's strings and distances written as JSON
(api/_json.c). Everything else about the package is in pyproject.toml; `pip install -e .` builds them in place, as
does `python setup.py build_ext --inplace`."""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCES = {"search._pass": "search/_pass.c", "api._json": "api/_json.c"}


def compiled(name: str, source: str) -> Extension:
    """The module `name` from `source`, with the source's SHA-256 built in (`<module>.SOURCE_SHA256`): its tests
    (tests/index/test_pass.py, tests/api/test_json_c.py) fail on a module built from other C than the checkout's
    (a change to the C not built again), instead of testing that code. -ffp-contract=off: no multiply and add
    fused into one rounding, so the pass's cosines are NumPy's floats bit for bit (and `km`'s product is one
    rounding)."""
    digest = hashlib.sha256((Path(__file__).parent / source).read_bytes()).hexdigest()
    return Extension(name, [source], define_macros=[("SOURCE_SHA256", f'"{digest}"')],
                     extra_compile_args=["-O2", "-ffp-contract=off"])


setup(ext_modules=[compiled(name, source) for name, source in SOURCES.items()])
