-- view: workflow_stats
-- grain: one row per period and brand and status: whole days (SPARKLIO_TIMEZONE) before the day of the
--        rollup's watermark and whole hours after its midnight, from analytics.workflow_rollup, then the rows
--        created after the watermark, aggregated live from the raw view; so its sums equal the raw
--        view's for any time range that starts on a midnight (or on an hour of the current day)
-- columns:
--   period_start          timestamptz       start of the day or hour the runs started in (time column)
--   brand_id              bigint            brand of the project
--   brand_name            text              brand name
--   status                text              pending, running, completed, failed or cancelled
--   runs                  bigint            workflow runs started in the period
--   durations             bigint            of those, finished (with a duration)
--   duration_seconds_sum  double precision  their durations added up, in seconds

with state as (
    select watermark
    from ${analytics}.rollup_state
    where rollup = 'workflow'
),

rolled as (
    select *
    from ${analytics}.workflow_rollup
    where period_start < (select watermark from state)
),

live as (
    select buckets.*
    from state
    cross join lateral ${analytics}.workflow_buckets('hour', state.watermark, 'infinity') as buckets
)

select * from rolled
union all
select * from live
