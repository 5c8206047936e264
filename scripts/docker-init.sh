#!/usr/bin/env bash
# One-shot init of docker-compose: the same bootstrap a user runs, without serving.
# Steps are numbered by `sparklio-bi bootstrap` itself (views, Superset metadata, admin, assets).
set -euo pipefail
echo "sparklio-bi init: DATABASE_URL host ${DATABASE_URL#*@}"
exec sparklio-bi bootstrap --no-serve ${SPARKLIO_DEMO:---no-demo}
