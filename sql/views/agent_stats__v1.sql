-- view: agent_stats
-- grain: one row per period and brand, agent and model: whole days (SPARKLIO_TIMEZONE) before the day of the
--        rollup's watermark and whole hours after its midnight, from analytics.agent_rollup, then the rows
--        created after the watermark, aggregated live from the raw view; so its sums equal the raw
--        view's for any time range that starts on a midnight (or on an hour of the current day)
-- columns:
--   period_start    timestamptz  start of the day or hour the executions started in (time column)
--   brand_id        bigint       brand of the workflow's project
--   brand_name      text         brand name
--   agent_name      text         agent that ran the steps
--   model           text         LLM the agent called
--   executions      bigint       executions started in the period
--   successes       bigint       of those, succeeded
--   latency_ms_sum  bigint       their latencies added up, in milliseconds

with state as (
    select watermark
    from ${analytics}.rollup_state
    where rollup = 'agent'
),

rolled as (
    select *
    from ${analytics}.agent_rollup
    where period_start < (select watermark from state)
),

live as (
    select buckets.*
    from state
    cross join lateral ${analytics}.agent_buckets('hour', state.watermark, 'infinity') as buckets
)

select * from rolled
union all
select * from live
