-- view: router_stats
-- grain: one row per period and intent, model and risk level: whole days (SPARKLIO_TIMEZONE) before the day of the
--        rollup's watermark and whole hours after its midnight, from analytics.router_rollup, then the rows
--        created after the watermark, aggregated live from the raw view; so its sums equal the raw
--        view's for any time range that starts on a midnight (or on an hour of the current day)
-- columns:
--   period_start         timestamptz  start of the day or hour the requests were routed in (time column)
--   intent_type          text         intent the router classified
--   selected_model       text         LLM the router picked
--   risk_level           text         low, medium, high or critical
--   decisions            bigint       requests routed in the period
--   context_before_sum   bigint       their context tokens before minimisation, added up
--   context_after_sum    bigint       their context tokens sent to the model, added up

with state as (
    select watermark
    from ${analytics}.rollup_state
    where rollup = 'router'
),

rolled as (
    select *
    from ${analytics}.router_rollup
    where period_start < (select watermark from state)
),

live as (
    select buckets.*
    from state
    cross join lateral ${analytics}.router_buckets('hour', state.watermark, 'infinity') as buckets
)

select * from rolled
union all
select * from live
