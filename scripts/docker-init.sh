#!/usr/bin/env bash
# One-shot init of docker-compose: the same bootstrap a user runs, without serving, then the
# doctor's checks that need no web server (the web app's own healthcheck is /health).
# Steps are numbered by `sparklio-bi bootstrap` itself (views, Superset metadata, admin, assets).
set -euo pipefail
echo "sparklio-bi init: DATABASE_URL host ${DATABASE_URL#*@}"
sparklio-bi bootstrap --no-serve ${SPARKLIO_DEMO:---no-demo}
exec sparklio-bi doctor --skip superset --skip collector --skip rollups
