"""The names of sources read together (`indexer.sources.source_names`): each its own file name, or as many of its
folders as tell it from another source of that name, and the work of naming them grows in step with their number."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import indexer.sources
from indexer.sources import source_names


def test_a_source_alone_or_of_a_name_of_its_own_keeps_its_own_name(tmp_path):
    paths = [tmp_path / "north" / "housing.csv", tmp_path / "south" / "ips.csv", tmp_path / "cqc"]
    assert source_names(paths) == {paths[0]: "housing.csv", paths[1]: "ips.csv", paths[2]: "cqc"}


def test_sources_of_one_name_are_named_with_the_folders_that_tell_them_apart_and_no_more(tmp_path):
    north, south = tmp_path / "a" / "north" / "housing.csv", tmp_path / "a" / "south" / "housing.csv"
    deeper = tmp_path / "b" / "north" / "housing.csv"  # shares `north/housing.csv` with the first
    alone = tmp_path / "c" / "ips.csv"
    assert source_names([north, south, deeper, alone]) == {
        north: "a/north/housing.csv", south: "south/housing.csv", deeper: "b/north/housing.csv", alone: "ips.csv"}


def test_one_source_given_twice_is_one_source_with_its_own_name(tmp_path):
    path = tmp_path / "north" / "housing.csv"
    assert source_names([path, Path(str(path))]) == {path: "housing.csv"}


def test_a_relative_path_is_named_from_where_it_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = source_names([Path("north/housing.csv"), Path("south/housing.csv"), Path(".")])
    assert names == {Path("north/housing.csv"): "north/housing.csv", Path("south/housing.csv"): "south/housing.csv",
                     Path("."): tmp_path.name}


def opcodes_run(function: Callable[[], Any], code_in: str) -> int:
    """How many bytecode instructions `function` runs in the code of the file `code_in` (its comprehensions
    included): a count of the work done, the same on every run, unlike a time."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        nonlocal count
        count += event == "opcode"
        return local

    def on_call(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        code: CodeType = frame.f_code
        if code.co_filename != code_in:
            return None
        frame.f_trace_opcodes = True
        return local

    previous = sys.gettrace()  # a coverage tool's or a debugger's, put back after
    sys.settrace(on_call)
    try:
        function()
    finally:
        sys.settrace(previous)
    return count


def test_naming_twice_as_many_sources_of_one_name_is_twice_the_work(tmp_path):
    """Every source named `services.csv`, each in a folder of its own: a naming that compared each source with
    every other would run four times the instructions for twice the sources."""
    def named(count: int) -> int:
        paths = [tmp_path / f"council-{n}" / "services.csv" for n in range(count)]
        assert set(source_names(paths).values()) == {f"council-{n}/services.csv" for n in range(count)}
        return opcodes_run(lambda: source_names(paths), indexer.sources.__file__)

    small, large = named(200), named(400)
    assert small > 0 and large <= 2.1 * small, (small, large)
