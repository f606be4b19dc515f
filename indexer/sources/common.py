"""What every importer needs: reading files (plain or gzipped), CSV rows with the line a person can open
the file at, and parsing cell text into typed values with errors that name the column and the value.

Importers only map fields; anything that cannot be mapped becomes a `Rejection` with a reason, never an
exception that stops the import.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from itertools import islice
from pathlib import Path, PurePath
from typing import Any, TypeGuard
from urllib.parse import quote

from geodata.errors import InvalidPostcode
from geodata.postcodes import parse_postcode
from indexer.rows import Candidate
from rehabmap.config import SYSTEM_FOLDERS
from rehabmap.errors import shorten
from rehabmap.record import one_line
from rehabmap.taxonomy import Classification, NotRehab, classify_provided

_SLUG = re.compile(r"[^a-z0-9]+")
_TRUE = {"yes", "y", "true", "t", "1"}
_FALSE = {"no", "n", "false", "f", "0"}
# Day-first forms are what UK sources write; ISO first because it is unambiguous.
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%d/%b/%Y", "%d %B %Y", "%d %b %Y")


class FileUnreadable(Exception):
    """The whole file cannot be read; the importer reports it once, at line 0."""


def read_text(path: Path) -> str:
    """The file's text, gunzipped if it ends in .gz. UTF-8 (with or without BOM) is expected; older
    NHS and council exports are often Windows-1252, which is the fallback, and spreadsheets save
    "Unicode text" as UTF-16 with a BOM. Any other file holding NUL bytes is binary, not text."""
    return decode_text(read_bytes(path))


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it ends in .gz, or `FileUnreadable` saying why (never where)."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise FileUnreadable(f"cannot read the file: {shorten(os_reason(exc))}") from exc


def os_reason(exc: BaseException) -> str:
    """Why a file could not be read, without the path an `OSError` names: the reason reaches people (a refused
    import's message, the maintainers' pages), the server's folders must not."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def said_without_folders(exc: BaseException, folders: Iterable[str | PurePath]) -> str:
    """An error's words as people may read them (a failed run's error, on the keepers' Sources page and in
    sync-status), naming a file by its name and never the server's `folders` (its home, data, feed and temp folders,
    its code: `Settings.own_folders`): an `OSError` by its reason and the file's name (its own words quote the whole
    path), any other error's words with each path in one of those folders (or the folder itself), or a file: URL of
    one, cut to its last part (under a system root alone, `SYSTEM_FOLDERS`, but a request's path after its HTTP
    method, a source's: `_REQUESTED`; the temp folder is the server's own even where it is '/tmp'). Whether a path is
    on this machine is not asked: the server's temp files are deleted before a failed run is recorded, a secret's
    file may be missing, and the question could raise or hang on a network mount. Only those are cut, by their whole
    text, so a folder with a space in its name goes whole, a Windows one too, and a path that is no file of the
    server's ('GET /api/v1/services/cqc:1-123') stays as said; before, any absolute-looking path was cut at its last
    '/', which kept the folders after a space and cut an API's path.
    Whoever runs the server has the whole in the exception itself (the command's error line, the log)."""
    if isinstance(exc, OSError) and exc.strerror:
        names = [_file_name(f) for f in (exc.filename, exc.filename2) if f is not None]
        return f"{exc.strerror}: {' -> '.join(names)}" if names else exc.strerror
    named = {str(f).rstrip("/\\") for f in folders} - {""}
    prefixes = sorted(named | {quote(f, safe="/\\:") for f in named}, key=len, reverse=True)  # and as a URL has it
    if not prefixes:
        return str(exc)
    # A path quoted goes to its closing quote (its parts may hold spaces); one unquoted, to the next space or quote,
    # and starts no later than a word's start (a URL's '/tmp/x' is no folder of the server's, but a file: URL's is).
    anyone = r"(?:file://(?:localhost)?)?(?:" + "|".join(map(re.escape, prefixes)) + ")"
    path = re.compile(rf"(?P<q>['\"])(?P<quoted>{anyone}(?:[/\\][^'\"]*)?)(?P=q)"
                      rf"|(?<![\w:/.\\-])(?P<bare>{anyone}(?:[/\\][^\s'\"]*)?)(?![\w.-])")
    roots = _ROOTS - _temp_folders()  # the temp folder is the server's own even where it is a root ('/tmp')
    own = [f for f in prefixes if f not in roots]
    words = str(exc)

    def cut(m: re.Match[str]) -> str:
        said = m["quoted"] if m["q"] else m["bare"]
        if not (said.startswith("file:") or _under(said, own)) and _REQUESTED.search(words, 0, m.start()):
            return m[0]  # under a system root alone, and a request's path ('GET /var/x'): a source's, said as it is
        return f"{m['q']}{_last_part(said)}{m['q']}" if m["q"] else _last_part(said)

    return path.sub(cut, words)


_ROOTS = frozenset(str(f) for root in SYSTEM_FOLDERS for f in (root, root.resolve()))
# A path right after an HTTP method is a request's, a source's API path ('GET /var/service-search/…'), whatever root
# its name begins with; a URL's path is never read as one (it follows the host, not a word's start).
_REQUESTED = re.compile(r"\b(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) $")


def _temp_folders() -> frozenset[str]:
    """The temp folder, as given and as its links resolve: where the server fetches a source's files
    (`TemporaryDirectory(prefix="rehabmap-")`), deleted before a failed run is recorded, so whether its paths are
    on the disk says nothing."""
    temp = Path(tempfile.gettempdir())
    return frozenset({str(temp.absolute()), str(temp.resolve())})


def _under(path: str, folders: Iterable[str]) -> bool:
    return any(path == f or path.startswith((f + "/", f + "\\")) for f in folders)


def _last_part(path: str) -> str:
    """A path's last part, whether its parts are parted by '/' or by '\\'."""
    return re.split(r"[/\\]", path.rstrip("/\\"))[-1]


def _file_name(filename: Any) -> str:
    """A file by its name, from its path (an `OSError`'s `filename` may also be bytes or a descriptor's number)."""
    return Path(os.fsdecode(filename)).name if isinstance(filename, (str, bytes, os.PathLike)) else str(filename)


def decode_text(raw: bytes) -> str:
    """A file's bytes as text, as `read_text` reads them (an uploaded table is read the same way)."""
    return decoded(raw)[0]


def decoded(raw: bytes) -> tuple[str, str]:
    """The text and the encoding it was read in, by its name on the web: the one rule of `decode_text`. A kept table
    needs both, once (it is checked as text, and downloaded as it was uploaded, byte for byte, so its Content-Type
    must say the encoding it was written in)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise FileUnreadable(f"cannot read the file as UTF-16 text: {shorten(exc)}") from None
    if b"\0" in raw:
        raise FileUnreadable("the file is binary, not text (it holds NUL bytes)")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "windows-1252"


def base_suffix(path: Path) -> str:
    """'.csv' for both 'x.csv' and 'x.csv.gz'."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def named_more_than_once(header: Sequence[str], columns: Iterable[str],
                         name: Callable[[str], str] = str) -> list[str]:
    """Those of `columns` that `header` names more than once (its columns as `name` reads them): a row's cells are
    read by the name (`CsvRow.values`), so the last such column's were read and the others' never, without a word (a
    'Phone' column beside a fax column also headed 'Phone' gave every service its fax number). The one check of a
    mapped CSV's header and of a curated table's."""
    named = Counter(map(name, header))
    return [c for c in columns if named[c] > 1]


def named_more_than_once_reason(reader: str, doubled: list[str]) -> str:
    """Why a file whose header names a column its `reader` reads more than once is refused."""
    return (f"{reader} reads column(s) {shorten(doubled, 300)}, which the file's header names more than once, so "
            "which of them it means cannot be told: give each column of the header its own name")


@dataclass(frozen=True)
class CsvRow:
    line: int               # the physical line the row starts on (header = its own line number)
    values: dict[str, str]
    left_out: tuple[str, ...] = ()  # the header's last columns the row has no cells for, read as empty
    short: str = ""                 # so, how many cells it has of the header's, and what may have made it short
    # A short row that the next would complete, or that would complete the one before: that it may be a part of a
    # row cut in two (`_cut_rows`); and the columns of the cells the line break would have cut (its last, of a first
    # part; its first, of a second)
    cut: str = ""
    cut_cells: tuple[str, ...] = ()

    @property
    def lost(self) -> tuple[str, ...]:
        """The columns whose cells the row may have lost: those it leaves out and, where it may be a part of a row
        cut in two, the cell the line break would have cut, which holds only what came before the break, or after."""
        return (*self.cut_cells, *self.left_out)

    def rejected(self, reason: str, about: Iterable[str]) -> str:
        """Why the row is rejected, saying first that it is short where a cell it may have lost (`lost`) is one of
        the columns the rejection is `about`, as the missing cell may be why: read as empty, it may be a value left
        out, not an empty cell that an Excel export did not write, and a cell a line break cut holds only what came
        before the break ('2026-10-'). A rejection for another column (a bad postcode in a row that leaves out its
        email) is said alone: the cells left out are not why."""
        if not set(self.lost) & set(about):
            return reason
        return f"{self.short}: {reason}"

    def cut_of(self, read: Iterable[str]) -> list[str]:
        """The warning of a row its reader keeps: where it may be a part of a row cut in two (`cut`) and its reader
        `read`s a cell it may have lost (`lost`), its values there may be in the next row (or the row before), which
        is rejected or read into the wrong columns, so the row is said by the import's report, not kept with those
        cells empty (or its first cell holding the end of another's) without a word."""
        return [self.cut] if self.cut and set(self.lost) & set(read) else []

    def landed(self, candidate: Candidate, read: Iterable[str], fields: Mapping[str, Iterable[str]]) -> None:
        """A row its reader keeps (indexed or held for review) as `candidate`, whose record's `fields` its reader
        reads from the columns given each: warned of where it may be cut in two (`cut_of`), and then a reason the
        import rejects it for later, about a field a cell it may have lost gives, says first that it is short
        (`Candidate.rejected`), as the cell cut may be why (a postcode 'LS9', its rest on the next line). Before, every
        later reason did, though most were about cells the row holds whole."""
        if warned := self.cut_of(read):
            candidate.warnings += warned
            candidate.short = self.short
            candidate.lost_fields = frozenset(f for f, columns in fields.items() if set(columns) & set(self.lost))


@dataclass(frozen=True)
class CsvProblem:
    """A row that cannot be read as cells (bad quoting, too many or too few cells)."""

    line: int
    reason: str


@dataclass(frozen=True)
class CsvTable:
    header: list[str]
    header_line: int
    rows: Iterator[CsvRow | CsvProblem]


def csv_table(text: str, is_header: Callable[[list[str]], bool] | None = None,
              search_lines: int = 1, short_rows: bool = False) -> CsvTable | None:
    """Find the header within the first `search_lines` records (some publishers put a title block
    above it) and stream the rows after it. None when no header is found. `short_rows`: a row with fewer cells
    than the header, which the file does not end inside, is read with the cells it leaves out empty (`_rows`).
    A blank line above the header is no record, as it is no row below it: before, a file whose first line was blank
    was refused for a header of no columns ("no mapping for this CSV: … columns found: []"). The header is looked for
    in the text's first lines as they are (`_Lines`), and the text copied once for its rows where it is found: every
    CSV read without a mapping is first looked at for the CQC directory's header, and that look copied the whole text
    (four bytes a character) to read ten lines of it."""
    lines = _Lines(text)
    reader = csv.reader(lines)
    searched = 0
    while searched < search_lines:
        try:
            cells = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise FileUnreadable(f"not a CSV file a header can be read from: {shorten(exc)}") from None
        if not any(c.strip() for c in cells):
            continue
        searched += 1
        header = [c.strip() for c in cells]
        if is_header is None or is_header(header):
            stream = io.StringIO(text, newline="")
            stream.seek(lines.at)
            rows = _rows(text, stream, header, short_rows, reader.line_num)
            return CsvTable(header, reader.line_num, _cut_rows(rows, header, text, reader.line_num) if short_rows
                            else rows)
    return None


class _Lines:
    """The lines of `text`, each with its line's end, as a StringIO reads them (newline=""), without a copy of the text;
    `at`: where the next starts."""

    def __init__(self, text: str) -> None:
        self._text, self.at = text, 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.at >= len(self._text):
            raise StopIteration
        begin, self.at = self.at, _next_line(self._text, self.at)
        return self._text[begin:self.at]


def _rows(text: str, stream: io.StringIO, header: list[str], short_rows: bool,
          lines_before: int) -> Iterator[CsvRow | CsvProblem]:
    """The rows of `text`, read through `stream` from where it is, after the file's first `lines_before` lines (the
    header's, and those above it).
    A row with fewer cells than the header that the file ends inside is a problem,
    not a row whose missing cells are empty: a file cut off inside its last row (a download or copy that stopped)
    ends in one, and its values were read as if whole (`…,51.73,-0.` stored the longitude -0.0, 34 km off).
    Elsewhere, with `short_rows` (a file a person may have saved from Excel, whose older versions leave out the
    empty cells at the end of a row past the 16th), a short row is read with the cells it leaves out empty and
    names them (`CsvRow.left_out`), so a row its reader rejects says it is short; without, it is a problem, as in
    the files CQC publishes, which never leave cells out.
    A row whose quotes do not pair up (where the strict reader fails) is a problem, or read right where it can be
    (`_unpaired`), and the text is read on from where `_unpaired` says, by a new reader of the one copy of the text
    (`stream`, the header's): a file may hold thousands, and a copy each cost seconds. A quote typed so
    ('"Cygnet Hospital Bierley') opens a cell that runs to the file's next quote, and the real 2018 hospital list's next
    is 34 lines on: before, those rows were read into one cell, and no rejection named them. Where the next quote is
    past the longest cell Python's reader takes (131,072 characters), every row after it was one rejection, "unreadable
    CSV from here on". Where each row starts is where the stream was when the reader began it.
    A row over lines whose quotes pair up reads as Python's reader reads it, even where a typed quote opened its cell
    and one typed in a later row closed it (',""BLT EAR, NOSE, AND THROAT",'), the rows between read as one cell: such
    a row has the very shape of a well-formed cell over lines ('"Hours: see below\nMon,Tue,""Closed"" Sun"'), and a
    well-formed file loses nothing."""
    reader = _reader_at(stream, stream.tell())
    cut_at = len(text) if text and text[-1] not in "\r\n" else -1  # a text ending in a newline ends between rows
    width = len(header)
    end = lines_before  # the last line read
    while True:
        start, row_at = end + 1, stream.tell()
        try:
            cells = next(reader)
            end = lines_before + reader.line_num
        except csv.Error as exc:
            begin, upto = row_at, start  # where the row starts; the last line it takes
            reason: str | None
            read: list[str] = []  # the row's cells, where it can be read right all the same
            if _FIELD_LIMIT in str(exc):
                reason, on = _unreadable(text, begin, width, exc)
            else:  # its quotes do not pair up: the reader is strict, which costs a row nothing
                reason, read, on, upto = _unpaired(text, begin, start, lines_before + reader.line_num, stream.tell(),
                                                   width)
            lines_before = end = upto
            if on is not None:
                reader = _reader_at(stream, on)
            if reason is not None:
                yield CsvProblem(start, reason)
                if on is None:
                    return
                continue
            cells = read
        except StopIteration:
            return
        if not any(c.strip() for c in cells):
            continue  # a blank line is not a row
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            yield CsvProblem(start, f"row has {len(cells)} cells but the header has {width} (check quoting)")
            continue
        if len(cells) < width and stream.tell() == cut_at:
            yield CsvProblem(start, f"row has {len(cells)} of the header's {width} columns: the file ends inside it, "
                                    "so it may be cut off")
            continue
        if len(cells) < width and not short_rows:
            yield CsvProblem(start, _short(len(cells), width))
            continue
        left_out = header[len(cells):]
        yield CsvRow(start, {h: c.strip() for h, c in zip(header, cells + [""] * len(left_out))}, tuple(left_out),
                     _short(len(cells), width) if left_out else "")


_CHECK_QUOTES = "Check its quotes: a quote inside a cell is written twice (\"\")"
_SWALLOWED = ("a quote (\") in this row opens a cell that runs {}, and {}: the quote looks typed in a cell that is not "
              "quoted, taking in the lines after it. The row is not read, and they are read as rows. " + _CHECK_QUOTES)
_WHOLE_LINE = "its line holds all the header's columns without it"
_LINES_AS_ROWS = ("each of its lines reads as a row without it (of the header's columns or fewer, as a row saved short "
                  "is)")
_UNPAIRED = ("a quote (\") in this row ends a cell where no cell ends (before neither a comma nor the line's end), "
             "and the row runs on to line {0}, so where its cells end cannot be told: the row is not read, nor the "
             "lines after its first that it takes in, to line {0}. " + _CHECK_QUOTES)
_CUT_OR_TYPED = ("a quote (\") in this row opens a cell that no quote closes before the file's end: the file may "
                 "be cut off inside it (a download or copy that stopped), or the quote typed in a cell that is not "
                 "quoted, taking in the lines after it. The row is not read, nor the lines after it, to line {0}, the "
                 "file's last. Check the file is whole, and its quotes: a quote inside a cell is written twice (\"\")")
_CUT_OFF = ("a quote (\") opens this row's last column, and no quote closes it before the file's end: the file looks "
            "cut off inside it (a download or copy that stopped). The row is not read, nor the lines after it, to line "
            "{0}, the file's last. Check the file is whole")
_UNPAIRED_ON_LINE = ("a quote (\") in this row opens a cell that a later quote on its line ends where no cell ends (it "
                     "opens a cell, after a comma), so which of its cells are which cannot be told: the quote looks "
                     "typed in a cell that is not quoted. The row is not read. " + _CHECK_QUOTES)


def _reader_at(stream: io.StringIO, at: int) -> Any:
    """A strict CSV reader of `stream` from `at`, where a line starts, counting lines from there. Strict, it fails at a
    quote that ends a quoted cell where a cell does not end (before a letter, not a comma), as the lenient reader read
    on, taking it for a letter of the cell (`_unpaired`)."""
    stream.seek(at)
    return csv.reader(stream, strict=True)


_FIELD_LIMIT = "field larger than field limit"  # the reader's words for a cell longer than it takes


_LINE_END = re.compile(r"\r\n|\r|\n")  # where the CSV reader ends a line (a StringIO with newline="")


def _next_line(text: str, at: int) -> int:
    """Where the line after the one `at` starts in `text` (its end, where it has no next)."""
    found = _LINE_END.search(text, at)
    return found.end() if found else len(text)


def _unpaired(text: str, begin: int, start: int, end: int, at: int,
              width: int) -> tuple[str | None, list[str], int | None, int]:
    """Why the row at `begin` in `text`, from line `start`, whose quotes do not pair up (the strict reader failed at
    line `end`, having read to `at`), is not read, or None and its cells where it can be read right; with where to read
    on from (None: nowhere) and the last line it takes. A person closes a cell broken over lines with a quote before a
    comma or the line's end, spaces allowed, so the row ends where such a quote closes the cell its first line ends in
    (`_row_end`), whichever quote the reader failed at, and none of its later lines is a row. It is read as the lenient
    reader reads it where that reader ends it there too and each quote it closes a cell at where no cell ends is on the
    cell's line and opens none ('"The Willows" care home,…'), as a typed quote's cell runs over lines or is ended by a
    later cell's opening quote. A typed quote that took in whole rows is known (`_typed_quote`, `_swallowed`), and they
    are read as rows; a cell no quote closes before the file's end may as well be the file cut off, so nothing after it
    is read; which quote of any other row is typed cannot be told. A row on one line reads as the lenient reader reads
    it, unless a quote on it ends a cell by opening one (`_cell_opening_quote`). A row whose line holds the header's
    columns with a quote opening its last, which no quote closes before the file's end, and no line after it that reads
    as a row (`_a_row`), is the file cut off inside it (`_CUT_OFF`), as a quote typed there would not be told by the
    columns it leaves; where a row follows, the quote is typed (`_typed_quote`) and the rows after it are read."""
    first = _next_line(text, begin)
    if at == len(text) and len(_cells(text[begin:first])) == width and _row_end(text, begin, lenient=False) is None \
            and not any(_a_row(line, width) for line in _Lines(text[first:])):
        return _CUT_OFF.format(end), [], None, end
    ends = _row_end(text, begin, lenient=False) if end > start or _runs_on(text, begin, first, width) else (first, True)
    closed = ends[0] if ends else at  # where no quote closes its cell, where the strict reader stopped
    last = _last_line(text, begin, closed, start)
    if ends and last > start and _row_end(text, begin, lenient=True) == ends:
        return None, next(csv.reader(io.StringIO(text[begin:closed], newline=""))), closed, last
    if end > start:
        if _typed_quote(text[begin:first], width):
            return _SWALLOWED.format(f"to line {end}, where no quote closes it as a cell is closed", _WHOLE_LINE), [], \
                first, start
        if (opened := _swallowed(text[begin:at], width, start)) is not None:
            return _SWALLOWED.format(opened, _LINES_AS_ROWS), [], first, start
    if ends is None and at == len(text):
        return _CUT_OR_TYPED.format(end), [], None, end
    if last > start:
        return _UNPAIRED.format(last), [], closed, last
    line = text[begin:first]
    return (_UNPAIRED_ON_LINE, [], first, start) if _cell_opening_quote(line) >= 0 else (None, _cells(line), first,
                                                                                           start)


_QUOTES = re.compile('"+')
_CELL_ENDS = re.compile(r"[ \t]*(?:,|\r|\n|\Z)")  # after a quote, where it closes a cell as a cell is closed
_SEPARATOR = re.compile(r"[,\r\n]")


def _row_end(text: str, at: int, lenient: bool) -> tuple[int, bool] | None:
    """Where the row at `at` in `text` ends (after its line's end), a cell a quote opens being closed by the quote
    that is followed by the cell's end (spaces, then a comma or the line's end, as a person closes a cell broken over
    lines: '"12 High St\nLeeds" ,LS1 1AA'), or, `lenient`, by the next as the lenient reader reads it, and with it
    whether each quote so closing a cell where no cell ends is on the cell's line and opens no cell (after a comma,
    or after its own first): a quote inside a cell that is not written twice, and no typed one. None where a cell
    runs to the file's end."""
    plain = True
    while True:
        if text.startswith('"', at):
            opened = at
            while True:
                run = _QUOTES.search(text, at + 1)
                if run is None:
                    return None
                at = run.end()
                if len(run[0]) % 2 == 0:  # quotes written twice, inside the cell
                    continue
                if _CELL_ENDS.match(text, at):
                    break
                if lenient:
                    plain = plain and _SEPARATOR.search(text, opened, at) is None and run.start() > opened + 1 \
                        and text[run.start() - 1] != ","
                    break
        cell_end = _SEPARATOR.search(text, at)
        if cell_end is None:
            return len(text), plain
        if cell_end[0] != ",":
            return _next_line(text, cell_end.start()), plain
        at = cell_end.end()


def _last_line(text: str, begin: int, end: int, start: int) -> int:
    """The number of the last line of `text[begin:end]`, whose first is line `start`."""
    breaks = sum(1 for _ in _LINE_END.finditer(text, begin, end))
    return start + breaks - (1 if breaks and text[end - 1] in "\r\n" else 0)


def _runs_on(text: str, begin: int, first: int, width: int) -> bool:
    """Whether a cell a quote opened may run on past `text[begin:first]`, a row's first line, whose quotes the strict
    reader found not to pair up: so read by the lenient reader ('"The Willows" care home,res,"12 High St'), or, where
    that reader finds fewer than the header's `width` cells in it, with an odd number of quotes ('Hope Group,"Hearing
    "Voices" group') but for a last one plainly typed (`_typed_last`), or after a quote that ends a cell by opening one
    ('"Home A,res,"12 High St'). Otherwise the row is its line ('"The Willows" care home,res,12 High St,LS1 1AA';
    'Hope Group,"Hearing "Voices" group,LS1 1AA'): a cell run on from a quote closed on the line, or a stray one, would
    take in the rows after it."""
    line = text[begin:first]
    if _open_cell(line) is not None:
        return True
    if len(_cells(line)) >= width:
        return False
    if line.count('"') % 2:
        return not _typed_last(text, begin, first)
    opening = _cell_opening_quote(line)
    return opening > 0 and line[opening - 1] == "," and _open_cell(line[opening:]) is not None


def _typed_last(text: str, begin: int, first: int) -> bool:
    """Whether the last quote of the line `text[begin:first]` is typed in a cell: inside one (after neither a comma, a
    quote nor the line's start) and before its next letter (neither a space, a comma, a quote nor the line's end), as
    no quote that opens or closes a cell is, its other quotes pairing up on the line, and the file's next quote after
    the line opening a cell (after a comma or at a line's start, not written twice), as a cell the line ran on in could
    not end at: 'Private Hospital "(Nhs Provided Beds)' in a row saved short, which read as its line before the reader
    was strict, and would run on to the next quote that closes a cell, lines on. A quote before a space or a comma
    ('Hope Group,"Hearing "Voices" group') may close a cell a quote opened on the line, which runs on."""
    at = text.rfind('"', begin, first)
    if at <= begin or text[at - 1] in ',"' or at + 1 >= first or text[at + 1] in ' \t,"\r\n':
        return False
    if _open_cell(text[begin:at] + text[at + 1:first]) is not None:
        return False
    after = text.find('"', first)
    return after >= 0 and text[after - 1] in ",\r\n" and not text.startswith('""', after)


def _cell_opening_quote(line: str) -> int:
    """Where the first quoted cell of `line` that is not closed as a cell is (before a comma or the line's end) is
    ended by a quote that opens a cell (after a comma) or that follows its own first ('""The Fermoy Unit, …'): a quote
    typed in a cell that is not quoted, and a later cell's own ('"Brentwood Community Hospital,"Crescent Drive, …"');
    -1 where it is not. A quote after a letter or a space ends a quoted cell that holds more ('"The Willows" care
    home')."""
    at = 0
    while (at := line.find('"', at)) >= 0:
        if at and line[at - 1] != ",":  # a quote inside a cell that is not quoted
            at += 1
            continue
        close = line.find('"', at + 1)
        while line.startswith('""', close):  # a quote written twice, inside the cell
            close = line.find('"', close + 2)
        if close < 0:
            return -1
        if line[close + 1:close + 2] not in ("", ",", "\r", "\n"):
            return close if line[close - 1] in ',"' else -1
        at = close + 1
    return -1


def _swallowed(row: str, width: int, start: int) -> str | None:
    """Where the cell a quote typed in `row`'s first line opens runs, where that quote took in the rows after it though
    its line does not hold all the header's `width` columns (a row saved short, without its last empty cells): the
    quote that ends the cell opens one, after a comma or at a line's start (a cell no quote ends runs to the file's
    end, `_CUT_OR_TYPED`), and each of its lines reads alone as a row of `width` columns or fewer whose quotes pair up,
    its first with that quote taken as typed. A quote that follows a space or a letter is no cell's first, so a cell it
    ends may be a quoted cell holding a quote not written twice: which quote is typed cannot be told, and the row is
    none of these (`_UNPAIRED`)."""
    _, *after = _LINE_END.split(row.rstrip("\r\n"))
    cells = _open_cell(row[:_next_line(row, 0)])
    if cells is None or len(cells) + cells[-1].count(",") > width:
        return None
    if any(len(_cells(line)) > width or not (_well_quoted(line) or _well_quoted(f'{line}"')) for line in after):
        return None  # a line may end in a cell a quote opened: another typed quote
    closing = next(((line, number) for number, line in enumerate(after, start + 1) if '"' in line), None)
    if closing is None:  # the file may be cut off inside the cell as well
        return None
    line, number = closing
    at = line.index('"')
    if (at and line[at - 1] != ",") or line.startswith('""', at):
        return None
    return f"to line {number}, where a quote that opens a cell ends it"


def _typed_quote(line: str, width: int) -> bool:
    """Whether `line`, a row's first, ends in a cell a quote opened (`_open_cell`) and holds at least the header's
    `width` columns with that quote taken as typed, each comma after it then ending a cell: a whole row, which the
    quote ran on past. A cell broken over lines in quotes leaves the row's last cells to its last line. A header of
    two columns or one is left alone: any line with a comma holds a row of it."""
    cells = _open_cell(line)
    return width > 2 and cells is not None and len(cells) + cells[-1].count(",") >= width


def _open_cell(line: str) -> list[str] | None:
    """The cells of `line` read alone, where its last is a cell a quote opened that runs on past its end (as the
    line's end is then in the cell); None where the line ends its row, or holds a cell too long to read (`_cells`)."""
    cells = _cells(line)
    return cells if cells and cells[-1].endswith(("\r", "\n")) else None


def _cells(line: str) -> list[str]:
    """The cells of `line` read alone; none where it holds a cell longer than the longest the reader takes."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return []


def _well_quoted(row: str) -> bool:
    """Whether `row`'s quotes pair up as a CSV's do: each cell a quote opens is closed by a quote before a comma or
    the line's end (the reader's strict reading)."""
    try:
        for _ in csv.reader(io.StringIO(row, newline=""), strict=True):
            pass
    except csv.Error:
        return False
    return True


def _reads_as_row(line: str, width: int) -> bool:
    """Whether `line` reads on its own as a row of the header's `width` columns, as a line of a cell a quote swallowed
    rows into does."""
    return len(_cells(line)) == width


def _a_row(line: str, width: int) -> bool:
    """Whether `line` reads on its own as a row: of more than one cell and at most the header's `width` (a row saved
    short leaves out its last empty cells), its quotes pairing up. A line of a cell the file's end cut off, after its
    first, most often holds no comma ('(ward')."""
    return 1 < len(_cells(line)) <= width and _well_quoted(line)


def _unreadable(text: str, begin: int, width: int, exc: csv.Error) -> tuple[str, int | None]:
    """Why the row at `begin` in `text` cannot be read, which the reader failed at (a cell longer than the longest it
    takes, 131,072 characters), and where to read on from: its next line where the row is its line, as a typed quote
    taking in the rows after it (`_typed_quote`) makes it, or as a line whose quotes pair up (an even number) is;
    None, reading no further, where a quote opens a cell the reader cannot end. Before, each was said as a quote
    opening a cell where the next line read as a row, even a line without one."""
    on = _next_line(text, begin)
    line = text[begin:on]
    if line.count('"') % 2 == 0:
        longest = max(len(cell) for cell in line.split(","))
        cell = f": a cell in this row is {longest:,} characters long" if longest > csv.field_size_limit() else ""
        return f"unreadable CSV ({exc}){cell}", on
    if _typed_quote(line, width) and _reads_as_row(text[on:_next_line(text, on)], width):
        return f"unreadable CSV ({exc}): " + _SWALLOWED.format("on past the longest a cell may be", _WHOLE_LINE), on
    return f"unreadable CSV from here on ({exc}): a quote (\") in this row opens a cell longer than that", None


def _cut_rows(rows: Iterator[CsvRow | CsvProblem], header: list[str], text: str,
              header_line: int) -> Iterator[CsvRow | CsvProblem]:
    """`rows`, each two rows that would make one marked `cut`, both: a line break inside a cell that is not quoted
    cuts a row in two rows whose cells, the cut cell counted in both, number the header's (or fewer, its last empty
    cells left out), so that one of them at least is short, and a part of a whole row cut in its first or last cell is
    one of the header's width beside a row of one cell. An Excel export quotes such a cell and leaves out only a row's
    last empty cells, so two of its rows make one only where they are mostly empty (none of the 2018 hospital list's
    848 so saved): a row that lands is warned of, never changed or rejected, as it may be whole. A row of one cell
    that no row beside it would make one with, as its cell cannot be a part of the cell the line break would have cut
    (`_ColumnShapes`, of the `text` under its header's line: made as the rows are read, and reading it again only
    where a row of one cell asks), is a heading typed between the rows ("North West"), and is skipped saying so."""
    shapes = _ColumnShapes(text, header_line, len(header))
    prior: CsvRow | CsvProblem | None = None  # the row before `before`
    before: CsvRow | CsvProblem | None = None
    for row in rows:
        if before is not None:
            done, row = _marked(before, row, header, shapes)
            # Only a short row may be a heading: a whole one, most rows, is not asked (a call a row was ~1% of
            # reading a CSV's rows).
            short = isinstance(done, CsvRow) and done.left_out
            yield _heading_skipped(done, prior, row, header, shapes) if short else done
            prior = done
        before = row
    if isinstance(before, CsvRow) and before.left_out:
        yield _heading_skipped(before, prior, None, header, shapes)
    elif before is not None:
        yield before


def _marked(row: CsvRow | CsvProblem, after: CsvRow | CsvProblem, header: list[str],
            shapes: _ColumnShapes) -> tuple[CsvRow | CsvProblem, CsvRow | CsvProblem]:
    """`row` and the row `after` it, each marked `cut` where one of them is short and they would make one row: where
    one is a row of one cell, only if the parts of the cell the line break would have cut make a cell of its column
    (a website does not end in 'North West')."""
    if not (isinstance(row, CsvRow) and isinstance(after, CsvRow) and (row.left_out or after.left_out)):
        return row, after
    width = len(header)
    cells, after_cells = width - len(row.left_out), width - len(after.left_out)
    if cells + after_cells - 1 > width:
        return row, after
    if 1 in (cells, after_cells) and not shapes.joins(cells - 1, row.values[header[cells - 1]],
                                                      after.values[header[0]]):
        return row, after
    cut = "if a line break inside a cell that is not quoted cut {} in two: check the row"
    first = (f"{_read_as(row)}: the next row, line {after.line}, has {after_cells}, which would complete it "
             + cut.format("it"))
    second = (f"{_read_as(after)}: the row before, line {row.line}, has {cells}, which it would complete "
              + cut.format("them"))
    return _part(row, first, header[cells - 1]), _part(after, second, header[0])


def _heading_skipped(row: CsvRow | CsvProblem, prior: CsvRow | CsvProblem | None, after: CsvRow | CsvProblem | None,
                     header: list[str], shapes: _ColumnShapes) -> CsvRow | CsvProblem:
    """`row`, or, where it is a row of one cell beside a row (`prior`, `after`) that it would have made one with had
    its cell fitted the cell a line break would have cut, and it made one with none (`_marked`), a problem saying it is
    skipped as a heading: it is no part of a row cut in two, and, of one cell, no service. Before, each row beside it
    was warned of as perhaps cut, and it was rejected for the cells it leaves out."""
    if not (isinstance(row, CsvRow) and not row.cut and len(row.left_out) == len(header) - 1 > 0):
        return row
    apart = []
    if isinstance(prior, CsvRow):  # its last cell is the one the line break would have cut
        apart.append(f"end line {prior.line} ({_holds(header, shapes, len(header) - len(prior.left_out) - 1)})")
    if isinstance(after, CsvRow):
        apart.append(f"begin line {after.line} ({_holds(header, shapes, 0)})")
    if not apart:  # no row beside it: nothing says what it is
        return row
    return CsvProblem(row.line, f"skipped as a heading: a row of one cell, '{shorten(row.values[header[0]])}', that "
                                f"cannot {' nor '.join(apart)}, so it is no part of a row cut in two; not a service")


def _holds(header: list[str], shapes: _ColumnShapes, column: int) -> str:
    return f"its column {header[column]} holds {shapes.of(column)} in every row that fills it"


def _read_as(row: CsvRow) -> str:
    """How a part of a row cut in two was read: short, with its last cells empty; or with every cell of the header,
    one of which holds only a part of a cell (a row cut in its first or last cell)."""
    if row.left_out:
        return f"read with its last {len(row.left_out)} cells empty"
    return f"read with all {len(row.values)} of the header's columns"


def _part(row: CsvRow, said: str, cell: str) -> CsvRow:
    """`row` marked as a part of a row cut in two (`cut`), the line break in `cell`: a row may be the second part of
    one and the first of another. A part that is not short says so first where it is rejected, as one that is does
    (`CsvRow.short`), as the cut is."""
    return replace(row, cut="; ".join(filter(None, (row.cut, said))), cut_cells=(*row.cut_cells, cell),
                   short=row.short or _PART)


# Shapes a column's every cell may have, narrowest first, which the parts of a cell a line break cut keep, joined:
# an id, a number, a code, a phone number, a web or email address (a heading's words have none of them)
_SHAPES = {"whole numbers": re.compile(r"\d+"), "numbers": re.compile(r"[-+]?\d*\.?\d+"),
           "codes in capitals": re.compile(r"[A-Z0-9]+"), "phone numbers": re.compile(r"\+?[\d ()-]+"),
           "values without spaces": re.compile(r"\S+")}
_SHAPED_BY = 5  # the filled cells a column needs before their shapes are taken for its
_FEW, _REPEATED_BY = 5, 20  # a column of at most _FEW values over at least _REPEATED_BY filled cells holds only those
_CHUNK = 1000  # the rows `_ColumnShapes` tests a column of at a time


@dataclass(frozen=True)
class _Shape:
    """What every filled cell of a column is: of `names` (`_SHAPES`), and, where the column repeats a few values
    ('True', 'False'), one of `values`. No names and no values: anything."""

    names: tuple[str, ...] = ()
    values: frozenset[str] | None = None

    def holds(self, cell: str) -> bool:
        return (self.values is None or cell in self.values) and all(_SHAPES[n].fullmatch(cell) for n in self.names)

    def __str__(self) -> str:
        if self.values is not None:
            return "only " + " or ".join(f"'{v}'" for v in sorted(self.values))
        return self.names[0] if self.names else "anything"


class _ColumnShapes:
    """Each column's `_Shape` in the file's whole rows, where at least `_SHAPED_BY` fill it: a line break cuts a cell
    into parts that, joined, have the shape of its column, so a row of one cell whose cell cannot be joined so to the
    cell of a row beside it is no part of a row with it. Found at the first row of one cell beside another (a second
    reading of the file, which most files never need), as a column's shape is that of all its cells."""

    def __init__(self, text: str, header_line: int, width: int) -> None:
        self._text, self._header_line, self._width = text, header_line, width
        self._found: list[_Shape] | None = None

    def of(self, column: int) -> _Shape:
        if self._found is None:
            self._found = self._find()
        return self._found[column]

    def joins(self, column: int, first: str, second: str) -> bool:
        """Whether `first` and `second` may be the parts of one cell of `column` a line break cut: joined as typed
        or with a space for the break, they have its shape."""
        shape = self.of(column)
        return shape.holds(first + second) or shape.holds(f"{first} {second}")

    def _find(self) -> list[_Shape]:
        """Each column's shape, its cells tested a column of `_CHUNK` rows at a time (each shape by `all` over them),
        and no more of a column that no shape fits and that holds more than `_FEW` values: it is anything, whatever
        its other cells (a name, an address). Testing each cell against each shape still fitting, one by one, took the
        real ODS site list with a heading 2.6 times as long to read as without, now 2.0 (bench/RESULTS.md)."""
        fitting = [tuple(_SHAPES) for _ in range(self._width)]
        values: list[set[str]] = [set() for _ in range(self._width)]
        filled = [0] * self._width
        rows = self._whole_rows()
        while chunk := list(islice(rows, _CHUNK)):
            for column, cells in enumerate(zip(*chunk)):
                few = values[column]
                if not fitting[column] and len(few) > _FEW:
                    continue
                cells = tuple(filter(None, map(str.strip, cells)))
                filled[column] += len(cells)
                fitting[column] = tuple(n for n in fitting[column] if all(map(_SHAPES[n].fullmatch, cells)))
                for cell in cells:
                    if len(few) > _FEW:
                        break
                    few.add(cell)
        return [_Shape(fits if count >= _SHAPED_BY else (),
                       frozenset(few) if count >= _REPEATED_BY and len(few) <= _FEW else None)
                for fits, few, count in zip(fitting, values, filled)]

    def _whole_rows(self) -> Iterator[list[str]]:
        """The cells of each row after the header with as many as it has columns, up to one the reader cannot read."""
        reader = csv.reader(io.StringIO(self._text, newline=""))
        try:
            for cells in reader:
                if reader.line_num > self._header_line and len(cells) == self._width:
                    yield cells
        except csv.Error:
            return  # the rows before it tell the shapes; `_rows` reports the row


_PART = ("row may be a part of a row cut in two (a line break inside a cell that is not quoted), though it has all "
         "the header's columns")


def _short(cells: int, width: int) -> str:
    """A row of `cells` cells under a header of `width` columns, and what may have made it short."""
    return (f"row has {cells} of the header's {width} columns (cells left out, or a line break inside a cell that "
            "is not quoted)")


def parse_int(value: Any, what: str) -> int:
    try:
        number = float(str(value).replace(",", "").strip())
    except ValueError:
        raise ValueError(f"{what}: '{shorten(value)}' is not a number") from None
    if not number.is_integer():
        raise ValueError(f"{what}: '{shorten(value)}' is not a whole number")
    return int(number)


def parse_float(value: Any, what: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"{what}: '{shorten(value)}' is not a number") from None


def parse_date(value: Any, what: str) -> date:
    if isinstance(value, date):
        return value
    text = str(value).strip().split(" - ")[0].split("T")[0]  # CQC writes '01/Jan/2024 - 00:00'
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{what}: '{shorten(value)}' is not a date (use YYYY-MM-DD or DD/MM/YYYY)")


def parse_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError(f"{what}: '{shorten(value)}' is not yes/no")


def parse_list(value: Any, what: str) -> list[str]:
    """Needs and codes: separated by ';', ',' or '|'."""
    return [part.strip() for part in re.split(r"[;,|]", str(value)) if part.strip()]


def parse_postcode_text(value: Any, what: str) -> str:
    """Canonical 'LS9 7TF'; a value that is not a postcode at all is an error naming it."""
    try:
        return parse_postcode(str(value)).value
    except InvalidPostcode:
        raise ValueError(f"{what}: '{shorten(value)}' is not a UK postcode") from None


# An organisation's name that says it is statutory: an NHS trust ("… NHS Foundation Trust"), "NHS" itself (as
# council directories name the provider of NHS services), or a council.
_NHS_NAME = re.compile(r"\bNHS\b.*\btrust\b|^\s*NHS\s*$", re.I)
_COUNCIL_NAME = re.compile(r"\bcouncil\b|\bborough of\b", re.I)


def provider_type_from_name(provider: str | None) -> str | None:
    """Sources without a provider type (the CQC care directory, council ORUK feeds) still name the provider:
    NHS trusts and councils say what they are in their names. Anything else is not known from a name."""
    if not provider:
        return None
    if _NHS_NAME.search(provider):
        return "nhs"
    if _COUNCIL_NAME.search(provider):
        return "local_authority"
    return None


def parse_text(value: Any, what: str) -> str:
    """A cell's text as one line (`one_line`): a quoted cell's line break is a space, as in a name from any source."""
    return one_line(str(value))


# How a cell becomes the value of a canonical field (rehabmap.record.Service); text by default.
FIELD_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "beds": parse_int, "min_age": parse_int, "max_age": parse_int,
    "lat": parse_float, "lon": parse_float,
    "capacity_as_of": parse_date, "cqc_rating_date": parse_date, "last_verified": parse_date,
    "accepting_referrals": parse_bool, "self_referral": parse_bool, "legacy_locked_label": parse_bool,
    "pd_specialist": parse_bool, "needs_met": parse_list, "needs_not_met": parse_list,
    "postcode": parse_postcode_text,
}
# A website is text here: a directory's 'www.example.org.uk' is completed by the record
# (`rehabmap.record.Service._website_completed`), whose field source says so, whatever the source.


def parse_field(field: str, value: Any, what: str) -> Any:
    return FIELD_PARSERS.get(field, parse_text)(value, what)


def compact(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values: a field a source leaves empty is unknown, and the pipeline only fills in
    (type from label, point from postcode) what is absent."""
    return {k: v for k, v in fields.items() if v not in (None, "", [], {})}


def join_address(*parts: str | None) -> str | None:
    """Address lines (or comma-separated parts) as one string, each part once, in order ("12 High St, Leeds")."""
    lines = [" ".join(p.split()) for part in parts if part for p in re.split(r"[\r\n,]+", part)]
    return ", ".join(dict.fromkeys(line for line in lines if line)) or None


def slugify(text: str) -> str:
    return _SLUG.sub("-", text.casefold()).strip("-")


class RowParser:
    """Parses the cells of one row into canonical fields, collecting every error so a person can fix
    the row in one go rather than one complaint per run."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.errors: list[str] = []

    def set(self, field: str, raw: Any, what: str) -> bool:
        """`what` names the source column or key, so the error points at the file, not at rehabmap. False where
        the value is refused, so a reader knows which of its columns an error is about (`CsvRow.rejected`)."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return True
        try:
            self.fields[field] = parse_field(field, raw, what)
        except ValueError as exc:
            if str(exc) not in self.errors:  # one column may feed two fields
                self.errors.append(str(exc))
            return False
        return True


UNSTATED_LEVEL = ("the name says it is an inpatient rehabilitation unit, but not its level: level 1 proposed, "
                  "a maintainer says which")


def label_reading(fields: dict[str, Any], label_text: str) -> Classification | NotRehab | None:
    """What the row's label says of its type. None: it says nothing, so a default service type is for it; a
    label that names a type (or an adult secure service, returned as the `NotRehab` the pipeline rejects it
    with) is left to the pipeline's classifier. A label that reads as VCFSE says nothing of an NHS or council
    row's type (`classify_provided`): an NHS trust's site is no voluntary service, so it is held for review or
    given the mapping's default, never left to be read as one."""
    try:
        return classify_provided(fields.get("original_label") or label_text, fields.get("provider_type"))
    except NotRehab as exc:
        return exc


def unstated_level(reading: Classification | NotRehab | None) -> TypeGuard[Classification]:
    """Whether a label reads as an inpatient unit without saying its level: level 1 is then only the classifier's
    default, which a source that states no type does not confirm (a maintainer says which, in the review queue)."""
    return isinstance(reading, Classification) and reading.service_type.is_inpatient and not reading.level_stated
