"""The source name of a service made in the directory itself (the maintainers' `/maintain`), in a module of its
own: the command line's start names every source's title (`indexer.sync.connectors.TITLES`) and must not load the
record model and its libraries to do so (tests/test_startup_imports.py)."""

OVERLAY_SOURCE = "directory"
