-- function: statement_stats() v2, and carries_password(query) (owned by the bundle)
-- grain: one row per statement tracked by pg_stat_statements, less those whose text may carry a
--        password
-- why: pg_stat_statements keeps a utility statement's text as it was sent, constants and all:
--      the reader role's password, set in clear text by bootstrap before v2, stayed readable by
--      every viewer through slow_queries. carries_password() is the one rule of which statements
--      those are; bootstrap also removes them from the statistics (sparklio_bi/privileges.py).
--      Runs with its owner's rights (security definer) as v1 does.

create or replace function ${analytics}.carries_password(query text)
returns boolean
language sql
immutable
-- role, user and group statements that set a password, and any password keyword followed by a
-- literal (user mappings, servers); chr(39) is the quote: the body is itself a quoted string
as '
    select query ~* (''\m(create|alter)\s+(role|user|group)\M.*\mpassword\M|\mpassword\M\s*=?\s*'' || chr(39))
';

create or replace function ${analytics}.statement_stats()
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
as '
    select query, dbid, calls, mean_exec_time, total_exec_time, rows
    from pg_stat_statements
    where not ${analytics}.carries_password(query)
';
