-- view: workflow_daily
-- grain: one row per calendar day (SPARKLIO_TIMEZONE), from the first workflow's day (or 90 days
--        ago) to today; days without runs are present with zero counts; day is a timestamp, not a
--        date, because Superset truncates a time range's bounds to whole days on date columns
-- v2: counts from workflow_stats (the rollup) instead of every workflow row, and days in the
--     reporting time zone instead of the session's
-- columns:
--   day              timestamptz  midnight of the calendar day (time column)
--   workflow_count   bigint       runs started that day
--   completed_count  bigint       of those, completed
--   failed_count     bigint       of those, failed

with per_day as (
    select
        (period_start at time zone '${timezone}')::date as day,
        sum(runs) as workflow_count,
        coalesce(sum(runs) filter (where status = 'completed'), 0) as completed_count,
        coalesce(sum(runs) filter (where status = 'failed'), 0) as failed_count
    from ${analytics}.workflow_stats
    group by 1
),

today as (
    select (now() at time zone '${timezone}')::date as day
),

calendar as (
    select days.day::date as day
    from today
    cross join generate_series(
        least((select min(day) from per_day), today.day - 89),
        today.day,
        interval '1 day'
    ) as days (day)
),

final as (
    select
        calendar.day::timestamp at time zone '${timezone}' as day,
        coalesce(per_day.workflow_count, 0)::bigint as workflow_count,
        coalesce(per_day.completed_count, 0)::bigint as completed_count,
        coalesce(per_day.failed_count, 0)::bigint as failed_count
    from calendar
    left join per_day on calendar.day = per_day.day
)

select * from final
