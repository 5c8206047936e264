-- view: asset_stats
-- grain: one row per period and brand and asset type: whole days (SPARKLIO_TIMEZONE) before the day of the
--        rollup's watermark and whole hours after its midnight, from analytics.asset_rollup, then the rows
--        created after the watermark, aggregated live from the raw view; so its sums equal the raw
--        view's for any time range that starts on a midnight (or on an hour of the current day)
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

with state as (
    select watermark
    from ${analytics}.rollup_state
    where rollup = 'asset'
),

rolled as (
    select *
    from ${analytics}.asset_rollup
    where period_start < (select watermark from state)
),

live as (
    select buckets.*
    from state
    cross join lateral ${analytics}.asset_buckets('hour', state.watermark, 'infinity') as buckets
)

select * from rolled
union all
select * from live
