-- view: database_size
-- grain: one row: the current database, measured at query time
-- columns:
--   database_name  name    the database the views live in (no hard-coded name)
--   size_bytes     bigint  pg_database_size of it

with final as (
    select
        current_database() as database_name,
        pg_database_size(current_database()) as size_bytes
)

select * from final
