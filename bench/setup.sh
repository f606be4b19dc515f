#!/usr/bin/env bash
# Install what the benchmarks need: Debian's PostgreSQL + PostGIS and wrk, and bench/requirements.txt.
# Run from the repository root as root (or with sudo): bash bench/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v wrk >/dev/null || ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq postgresql postgis wrk >/dev/null
fi
python3 -m pip install --quiet -e .
python3 -m pip install --quiet -r bench/requirements.txt
echo "bench: ready (PostgreSQL $(ls /usr/lib/postgresql), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2))"
