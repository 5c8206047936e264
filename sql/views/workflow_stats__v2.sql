-- view: workflow_stats
-- grain: one row per period and brand and status: whole days (SPARKLIO_TIMEZONE) before the day of the
--        rollup's watermark from analytics.workflow_rollup, that day's hours from analytics.workflow_hours,
--        then the rows created after the watermark, aggregated live from the raw view per hour; so
--        its sums equal the raw view's for any range that starts and ends on a midnight (or on
--        an hour of the current day); for any other range use workflow_stats_between(since, until),
--        which the charts read: the same columns, exact for a range whose ends fall at any second
-- v2: workflow_stats_between(null, null); the watermark moves with every refresh, not every hour
-- columns:
--   period_start          timestamptz       start of the day or hour the runs started in (time column)
--   brand_id              bigint            brand of the project
--   brand_name            text              brand name
--   status                text              pending, running, completed, failed or cancelled
--   runs                  bigint            workflow runs started in the period
--   durations             bigint            of those, finished (with a duration)
--   duration_seconds_sum  double precision  their durations added up, in seconds

select * from ${analytics}.workflow_stats_between(null, null)
