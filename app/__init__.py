"""The composition root: opens the parts from the one settings object and assembles the API and the pages
into one ASGI application. Nothing below imports it; `uvicorn app.main:create_app --factory` runs it."""
