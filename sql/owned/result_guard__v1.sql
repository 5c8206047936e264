-- function: refuse_large_result(max_bytes) (owned by the bundle, called by Superset's queries)
-- grain: none; raises
-- why: a row limit does not bound bytes: one `select repeat('x', 500000000)` took a Superset web
--      worker from 360 MB to 2.2 GB. superset_config.py wraps every chart and SQL Lab query so
--      that PostgreSQL adds up the rows' sizes as it sends them and calls this once the sum passes
--      SPARKLIO_SQL_MAX_RESULT_BYTES: the query fails there, before the bytes reach Superset.

create function ${analytics}.refuse_large_result(max_bytes bigint)
returns boolean
language plpgsql
volatile
-- a quoted body, not dollar quotes: the file is a string.Template (dollar signs are its own)
as '
begin
    raise exception ''this result is over % (SPARKLIO_SQL_MAX_RESULT_BYTES): select fewer rows or columns'',
        pg_size_pretty(max_bytes)
        using errcode = ''program_limit_exceeded'';
end
';
