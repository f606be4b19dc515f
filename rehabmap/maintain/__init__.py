"""Keeping the directory true: the maintainers' store (tokens, organisations, edits overlay, audit log),
who may change what, the edits themselves, and how fresh each record is."""
