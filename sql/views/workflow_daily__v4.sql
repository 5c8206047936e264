-- view: workflow_daily
-- grain: one row per calendar day (SPARKLIO_TIMEZONE) and brand, from the first workflow's day (or
--        90 days ago) to today; days without runs are present with zero counts, for every brand;
--        day is a timestamp, not a date, because Superset truncates a time range's bounds to whole
--        days on date columns
-- v4: workflow_daily_between(null, null); chart 1.1 reads workflow_daily_between(since, until),
--     whose first day counts the runs from the range's start and is labelled with it
-- columns:
--   day              timestamptz  midnight of the calendar day (time column)
--   brand_id         bigint       the brand
--   brand_name       text         brand name
--   workflow_count   bigint       runs of the brand's projects started that day
--   completed_count  bigint       of those, completed
--   failed_count     bigint       of those, failed

select * from ${analytics}.workflow_daily_between(null, null)
