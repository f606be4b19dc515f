"""The two search engines behind the index interface (`rehabmap.index.base`): embedded (a SQLite file read
into NumPy columns, the default) and Elasticsearch. They implement the domain's protocol and know nothing
of the faces; the composition root picks one from the settings."""
