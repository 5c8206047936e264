-- function: statement_stats() (owned by the bundle, read by the slow_queries view)
-- grain: one row per statement tracked by pg_stat_statements
-- why: pg_stat_statements hides other roles' query text from a role without
--      pg_read_all_stats. Runs with its owner's rights (security definer) so Superset's
--      read-only role sees the normalised statements dashboard 5 shows, and nothing else
--      of the server's statistics (no pg_read_all_stats, no pg_stat_activity).

create function ${analytics}.statement_stats()
returns table (
    query text,
    dbid oid,
    calls bigint,
    mean_exec_time double precision,
    total_exec_time double precision,
    rows bigint
)
language sql
stable
security definer
set search_path = pg_catalog, public
-- a quoted body, not dollar quotes: the file is a string.Template (dollar signs are its own)
as '
    select query, dbid, calls, mean_exec_time, total_exec_time, rows
    from pg_stat_statements
';
