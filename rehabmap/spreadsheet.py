"""Text a spreadsheet would run. Excel, LibreOffice and Google Sheets take a cell that starts with one of
these characters as a formula (CSV injection), so every CSV rehabmap writes (the services export, the gap
analysis's exports) gives such text with a leading apostrophe, which spreadsheets show as plain text."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defused(text: str) -> str:
    """The text as a spreadsheet shows it and never runs it."""
    return "'" + text if text.startswith(_FORMULA_START) else text
