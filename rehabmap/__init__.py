"""rehabmap: find local mental health rehabilitation resources across the whole pathway.

The domain: the vocabulary (taxonomy, record, errors, settings), the index interface every search engine
implements, and the capabilities over it (match, browse, gaps, maintain), in plain Python with no web
framework. The indexer writes through it, the search engines implement it, and the API and the pages read
through it (docs/adr/0002).
"""

__version__ = "0.1.0"
