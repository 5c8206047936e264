-- view: table_sizes
-- grain: one row per table of the application's schema, measured at query time
-- columns:
--   table_name   name    the table
--   total_bytes  bigint  table, indexes and toast (pg_total_relation_size)
--   table_bytes  bigint  table alone (pg_relation_size)
--   index_bytes  bigint  its indexes (pg_indexes_size)

with tables as (
    select tablename as table_name, format('%I.%I', schemaname, tablename)::regclass as relation
    from pg_catalog.pg_tables
    where schemaname = '${source}'
),

final as (
    select
        table_name,
        pg_total_relation_size(relation) as total_bytes,
        pg_relation_size(relation) as table_bytes,
        pg_indexes_size(relation) as index_bytes
    from tables
)

select * from final
