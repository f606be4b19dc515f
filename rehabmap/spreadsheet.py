"""What a spreadsheet makes of a CSV. Excel, LibreOffice and Google Sheets take a cell that starts with one of
these characters as a formula (CSV injection), so every CSV rehabmap writes (the services export, the gap
analysis's exports) gives such text with a leading apostrophe, which spreadsheets show as plain text; and Excel
reads the text's encoding from its first bytes (`BOM`)."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# First in every CSV rehabmap writes: a UTF-8 byte order mark. Excel reads a UTF-8 CSV without one in the
# machine's legacy code page (Windows-1252 in England: "Café" shows as "CafÃ©", "–" as "â€“"), and UTF-8 with it is
# what Excel itself writes as "CSV UTF-8". LibreOffice, Google Sheets, Numbers, pandas, R's readr and rehabmap's own
# importer skip it; a script reading the file in Python opens it with encoding="utf-8-sig".
BOM = "\ufeff"


def defused(text: str) -> str:
    """The text as a spreadsheet shows it and never runs it."""
    return "'" + text if text.startswith(_FORMULA_START) else text
