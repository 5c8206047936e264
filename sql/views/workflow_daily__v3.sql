-- view: workflow_daily
-- grain: one row per calendar day (SPARKLIO_TIMEZONE) and brand, from the first workflow's day (or
--        90 days ago) to today; days without runs are present with zero counts, for every brand;
--        day is a timestamp, not a date, because Superset truncates a time range's bounds to whole
--        days on date columns
-- v3: per brand (v2 added every brand up), so a brand rule limits it like every other dataset
--     with a brand_id; a day's runs are the sum over its rows
-- columns:
--   day              timestamptz  midnight of the calendar day (time column)
--   brand_id         bigint       the brand
--   brand_name       text         brand name
--   workflow_count   bigint       runs of the brand's projects started that day
--   completed_count  bigint       of those, completed
--   failed_count     bigint       of those, failed

with per_day as (
    select
        (period_start at time zone '${timezone}')::date as day,
        brand_id,
        sum(runs) as workflow_count,
        coalesce(sum(runs) filter (where status = 'completed'), 0) as completed_count,
        coalesce(sum(runs) filter (where status = 'failed'), 0) as failed_count
    from ${analytics}.workflow_stats
    group by 1, 2
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
        brand_names.brand_id,
        brand_names.brand_name,
        coalesce(per_day.workflow_count, 0)::bigint as workflow_count,
        coalesce(per_day.completed_count, 0)::bigint as completed_count,
        coalesce(per_day.failed_count, 0)::bigint as failed_count
    from calendar
    cross join ${analytics}.brand_names
    left join per_day on calendar.day = per_day.day and brand_names.brand_id = per_day.brand_id
)

select * from final
