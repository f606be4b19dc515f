"""The compiled part of rehabmap: `search._pass`, the row loops of a match's radius pass (search/_pass.c). Everything
else about the package is in pyproject.toml; `pip install -e .` builds it in place, as does
`python setup.py build_ext --inplace`."""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "search/_pass.c"
# The source's SHA-256, built into the module (`search._pass.SOURCE_SHA256`): tests/index/test_pass.py fails on a
# module built from other C than the checkout's (a change to the C not built again), instead of testing that code.
DIGEST = hashlib.sha256((Path(__file__).parent / SOURCE).read_bytes()).hexdigest()

# -ffp-contract=off: no multiply and add fused into one rounding, so the cosines are NumPy's floats bit for bit.
setup(ext_modules=[Extension("search._pass", [SOURCE], define_macros=[("SOURCE_SHA256", f'"{DIGEST}"')],
                             extra_compile_args=["-O2", "-ffp-contract=off"])])
