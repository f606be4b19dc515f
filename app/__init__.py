"""The composition root: opens the parts from the one settings object and assembles the API and the pages
into one ASGI application. Nothing below imports it; `rehabmap serve` runs `app.main:create_served_app` under
uvicorn."""
