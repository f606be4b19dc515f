"""The HTTP API: a thin FastAPI layer that parses requests, calls the domain and shapes replies."""
