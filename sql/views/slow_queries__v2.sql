-- view: slow_queries
-- grain: one row per statement tracked by pg_stat_statements (all databases of the server);
--        read through statement_stats(), so every role's normalised text shows (v2)
-- columns:
--   query_preview       text              first 50 characters of the normalised statement
--   query               text              the normalised statement
--   database_name       name              database the statement ran in
--   calls               bigint            times executed
--   mean_exec_time_ms   double precision  mean execution time in milliseconds
--   total_exec_time_ms  double precision  total execution time in milliseconds
--   rows                bigint            rows returned or affected in all

with statements as (
    select query, dbid, calls, mean_exec_time, total_exec_time, rows
    from ${analytics}.statement_stats()
),

final as (
    select
        substring(statements.query, 1, 50) as query_preview,
        statements.query,
        pg_database.datname as database_name,
        statements.calls,
        statements.mean_exec_time as mean_exec_time_ms,
        statements.total_exec_time as total_exec_time_ms,
        statements.rows
    from statements
    left join pg_catalog.pg_database on statements.dbid = pg_database.oid
)

select * from final
