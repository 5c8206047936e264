-- view: active_users
-- grain: one row per day (SPARKLIO_TIMEZONE), brand and user who created a project that day
-- v1: the whole days the last rollup refresh kept (active_user_days), plus the projects above the
--     highest id it saw; for any range use active_users_between(since, until), which chart 6.1
--     reads: the same columns, exact for a range whose ends fall at any second
-- columns:
--   period_start  timestamptz  start of the day (time column)
--   brand_id      bigint       brand of the project
--   brand_name    text         brand name
--   user_id       bigint       the user (count them with COUNT(DISTINCT user_id))

select * from ${analytics}.active_users_between(null, null)
