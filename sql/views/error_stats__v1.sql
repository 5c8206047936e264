-- view: error_stats
-- grain: one row per period and brand, agent, model and error type: whole days (SPARKLIO_TIMEZONE) before the day of the
--        rollup's watermark and whole hours after its midnight, from analytics.error_rollup, then the rows
--        created after the watermark, aggregated live from the raw view; so its sums equal the raw
--        view's for any time range that starts on a midnight (or on an hour of the current day)
-- columns:
--   period_start          timestamptz       start of the day or hour the failed executions started in (time column)
--   brand_id              bigint            brand of the workflow's project
--   brand_name            text              brand name
--   agent_name            text              agent that failed
--   model                 text              LLM the agent called
--   error_type            text              error class
--   failures              bigint            failed executions, recovered or not
--   still_failing         bigint            of those, not recovered (the spec's status = error)
--   recovered             bigint            of those, recovered
--   recovery_seconds_sum  double precision  the recovered ones' recovery times added up, in seconds

with state as (
    select watermark
    from ${analytics}.rollup_state
    where rollup = 'error'
),

rolled as (
    select *
    from ${analytics}.error_rollup
    where period_start < (select watermark from state)
),

live as (
    select buckets.*
    from state
    cross join lateral ${analytics}.error_buckets('hour', state.watermark, 'infinity') as buckets
)

select * from rolled
union all
select * from live
