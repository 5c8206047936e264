#!/usr/bin/env bash
# docker-compose, first start of the postgres service only (/docker-entrypoint-initdb.d/): the
# image's POSTGRES_USER is a superuser, so this creates the roles the bundle runs as and keeps
# the superuser to itself.
#   sparklio_owner     owns the analytics database and its views (migrations, collector);
#                      may create the read-only role Superset connects as (migration 0005)
#   superset_metadata  owns Superset's metadata database (the web app)
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner_password="$SPARKLIO_OWNER_PASSWORD" -v metadata_password="$SUPERSET_METADATA_PASSWORD" <<'SQL'
create role sparklio_owner login createrole password :'owner_password';
grant pg_read_all_stats to sparklio_owner;  -- dashboard 5: every session and statement
create role superset_metadata login password :'metadata_password';
create database sparklio owner sparklio_owner;
create database superset owner superset_metadata;
revoke connect on database superset from public;
\connect sparklio
create extension if not exists pg_stat_statements;
SQL
