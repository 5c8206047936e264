-- view: asset_reviews
-- grain: one row per asset type and review status (measured at query time)
-- why: the exporter's assets gauge; review statuses change in place, so no rollup holds them, and
--      the assets view's joins to projects and brands cost twice this scan (0.39 s against 0.16 s
--      at 1.45 million assets)
-- columns:
--   asset_type     text    image, copy, video, ...
--   review_status  text    approved, rejected, needs_changes, or unreviewed while not reviewed
--   assets         bigint  assets of that type in that status

with assets as (
    select asset_type, coalesce(review_status, 'unreviewed') as review_status
    from ${source}.assets
),

final as (
    select asset_type, review_status, count(*) as assets
    from assets
    group by asset_type, review_status
)

select * from final
