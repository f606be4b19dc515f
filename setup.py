"""The compiled part of rehabmap: `search._pass`, the row loops of a match's radius pass (search/_pass.c). Everything
else about the package is in pyproject.toml; `pip install -e .` builds it in place, as does
`python setup.py build_ext --inplace`."""

from setuptools import Extension, setup

# -ffp-contract=off: no multiply and add fused into one rounding, so the cosines are NumPy's floats bit for bit.
setup(ext_modules=[Extension("search._pass", ["search/_pass.c"], extra_compile_args=["-O2", "-ffp-contract=off"])])
