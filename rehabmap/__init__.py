"""rehabmap: find local mental health rehabilitation resources across the whole pathway.

The package holds the domain core (vocabulary, service record, index backends, matching) that the
indexer writes through and the API and web pages read through.
"""

__version__ = "0.1.0"
