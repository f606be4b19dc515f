"""The indexer: sources → canonical records → one index generation.

Each module in `indexer.sources` turns one source format into `Candidate` rows or `Rejection`s; the
source-agnostic `pipeline` validates, geocodes, derives area codes, merges duplicates and writes.
"""
