-- view: system_metrics
-- grain: one row per sample time, metric and dimension (from the bundle's system_samples table)
-- metrics: pg_connections (dimension: connection state), pg_database_bytes (database),
--          pg_table_bytes (table), redis_used_memory_bytes, redis_connected_clients,
--          celery_queue_length (dimension: queue);
--          this host's (psutil): host_cpu_ratio (busy share of all cores since the last sample,
--          0..1), host_cpu_cores, host_memory_used_bytes (total - available),
--          host_memory_total_bytes, host_swap_used_bytes, host_swap_total_bytes,
--          host_data_dir_disk_used_bytes, host_data_dir_disk_total_bytes (dimension: the mount
--          point of the bundle's data dir), host_database_disk_used_bytes,
--          host_database_disk_total_bytes (the mount point of the database's data directory,
--          sampled only when the server is on this host), host_load_average (dimension: 1 min,
--          5 min, 15 min), host_network_bytes (dimension: received, sent; cumulative over every
--          interface but loopback; as a rate per second in system_rates)
-- columns:
--   sampled_at  timestamptz       when the sample was taken (time column)
--   metric      text              what was measured
--   dimension   text              which part of it (state, table, queue, mount point, direction; empty when none)
--   value       double precision  the reading

with samples as (
    select sampled_at, metric, dimension, value
    from ${analytics}.system_samples
),

final as (
    select * from samples
)

select * from final
