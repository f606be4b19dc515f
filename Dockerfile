# The rehabmap API (and the `rehabmap` command for one-off jobs such as indexing).
# Built by docker-compose.yml; the geodata source files are mounted at run time, never baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements/runtime.txt ./requirements/
# The exact versions CI tests, with hashes; then the project itself without resolving anything again.
RUN pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml setup.py README.md ./
COPY rehabmap ./rehabmap
COPY geodata ./geodata
COPY indexer ./indexer
COPY search ./search
COPY api ./api
COPY web ./web
COPY app ./app
COPY cli ./cli
COPY mappings ./mappings

# The compiled parts (search/_pass.c, the radius pass's row loops; api/_json.c, a reply's JSON strings) need a C
# compiler to build; the image keeps the modules, not the compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install --no-deps . \
 && apt-get purge -y --auto-remove gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /var/rehabmap rehabmap
USER rehabmap
ENV REHABMAP_HOME=/var/rehabmap

EXPOSE 8000
# Healthy once the index is loaded (/health is 503 before it is built or while the cluster is out of reach).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
CMD ["rehabmap", "serve", "--host", "0.0.0.0", "--port", "8000"]
