-- view: rollup_lag
-- grain: one row per rollup the refresh keeps (analytics.rollup_state), measured at query time
-- why: the exporter's rollup lag gauge; the reader role holds no grant on rollup_state itself
-- columns:
--   rollup        text              which rollup (agents, errors, users, ...)
--   refreshed_at  timestamptz       when its last refresh committed
--   watermark     timestamptz       rows created from here on are read live, not from the rollup
--   lag_seconds   double precision  seconds since its last refresh

with state as (
    select rollup, refreshed_at, watermark
    from ${analytics}.rollup_state
),

final as (
    select
        rollup,
        refreshed_at,
        watermark,
        extract(epoch from now() - refreshed_at)::float8 as lag_seconds
    from state
)

select * from final
