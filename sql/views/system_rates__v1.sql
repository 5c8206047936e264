-- view: system_rates
-- grain: one row per sample of a cumulative counter after its first (host_network_bytes, dimension:
--        received, sent): its increase per second since the previous sample of the same metric and
--        dimension; none where the counter went back (a reboot)
-- columns:
--   sampled_at  timestamptz       when the sample was taken (time column)
--   metric      text              the counter (a metric of system_metrics)
--   dimension   text              which part of it (direction)
--   per_second  double precision  the counter's increase since the previous sample, per second
--   seconds     double precision  the seconds since that sample

with counters as (
    select sampled_at, metric, dimension, value
    from ${analytics}.system_samples
    where metric in ('host_network_bytes')
),

with_previous as (
    -- the previous sample found by index (metric, sampled_at), so a time filter on the view
    -- reaches this scan and each previous sample is one probe, whatever the history holds
    select
        counters.sampled_at,
        counters.metric,
        counters.dimension,
        counters.value - previous.value as increase,
        extract(epoch from counters.sampled_at - previous.sampled_at)::float8 as seconds
    from counters
    cross join
        lateral (
            select p.sampled_at, p.value
            from ${analytics}.system_samples as p
            where
                p.metric = counters.metric
                and p.dimension = counters.dimension
                and p.sampled_at < counters.sampled_at
            order by p.sampled_at desc
            limit 1
        ) as previous
),

final as (
    select sampled_at, metric, dimension, increase / seconds as per_second, seconds
    from with_previous
    where increase >= 0
)

select * from final
