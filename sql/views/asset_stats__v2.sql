-- view: asset_stats
-- grain: one row per period and brand and asset type: whole days (SPARKLIO_TIMEZONE) before the day of the
--        rollup's watermark from analytics.asset_rollup, that day's hours from analytics.asset_hours,
--        then the rows created after the watermark, aggregated live from the raw view per hour; so
--        its sums equal the raw view's for any range that starts and ends on a midnight (or on
--        an hour of the current day); for any other range use asset_stats_between(since, until),
--        which the charts read: the same columns, exact for a range whose ends fall at any second
-- v2: asset_stats_between(null, null); the watermark moves with every refresh, not every hour
-- columns:
--   period_start      timestamptz  start of the day or hour the assets were generated in (time column)
--   brand_id          bigint       brand of the project
--   brand_name        text         brand name
--   asset_type        text         image, copy, video, ...
--   assets            bigint       assets generated in the period
--   reviewed          bigint       of those, reviewed
--   approved          bigint       of those, approved
--   scored            bigint       of those, with a review score
--   review_score_sum  numeric      their review scores added up

select * from ${analytics}.asset_stats_between(null, null)
