-- view: workflow_daily
-- grain: one row per UTC calendar day, from the first workflow's day (or 90 days ago) to today;
--        days without runs are present with zero counts; day is a timestamp, not a date, because
--        Superset truncates a time range's bounds to whole days on date columns
-- columns:
--   day              timestamptz  UTC midnight of the calendar day (time column)
--   workflow_count   bigint       runs started that day
--   completed_count  bigint       of those, completed
--   failed_count     bigint       of those, failed

with runs as (
    select created_at::date as day, status
    from ${source}.workflows
),

calendar as (
    select generate_series(
        least((select min(day) from runs), current_date - 89),
        current_date,
        interval '1 day'
    )::date as day
),

per_day as (
    select
        day,
        count(*) as workflow_count,
        count(*) filter (where status = 'completed') as completed_count,
        count(*) filter (where status = 'failed') as failed_count
    from runs
    group by day
),

final as (
    select
        calendar.day::timestamp at time zone 'UTC' as day,
        coalesce(per_day.workflow_count, 0)::bigint as workflow_count,
        coalesce(per_day.completed_count, 0)::bigint as completed_count,
        coalesce(per_day.failed_count, 0)::bigint as failed_count
    from calendar
    left join per_day on calendar.day = per_day.day
)

select * from final
