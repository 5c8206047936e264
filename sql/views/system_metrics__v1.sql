-- view: system_metrics
-- grain: one row per sample time, metric and dimension (from the bundle's system_samples table)
-- metrics: pg_connections (dimension: connection state), pg_database_bytes (database),
--          pg_table_bytes (table), redis_used_memory_bytes, redis_connected_clients,
--          celery_queue_length (dimension: queue)
-- columns:
--   sampled_at  timestamptz       when the sample was taken (time column)
--   metric      text              what was measured
--   dimension   text              which part of it (state, table, queue; empty when none)
--   value       double precision  the reading

with samples as (
    select sampled_at, metric, dimension, value
    from ${analytics}.system_samples
),

final as (
    select * from samples
)

select * from final
