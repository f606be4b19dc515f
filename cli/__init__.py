"""The `rehabmap` command: each command parses its options, calls one library function and prints.

It sits on top, beside the composition root (`app`): it may import every layer below, and nothing
imports it. `python -m cli` runs it as the `rehabmap` script does.
"""
