-- view: assets
-- grain: one row per generated asset
-- columns:
--   asset_id       bigint       the asset
--   project_id     bigint       project it was generated for
--   workflow_id    bigint       workflow run that generated it
--   brand_id       bigint       brand of the project
--   brand_name     text         brand name
--   asset_type     text         image, copy, video, ...
--   review_status  text         approved, rejected or needs_changes; null while not reviewed
--   review_score   numeric      reviewer score 0-10; null while not scored
--   is_reviewed    integer      1 when review_status is set, else 0
--   is_approved    integer      1 when review_status = approved, else 0
--   created_at     timestamptz  when the asset was generated (time column)

with assets as (
    select
        id as asset_id,
        project_id,
        workflow_id,
        asset_type,
        review_status,
        review_score,
        created_at
    from ${source}.assets
),

projects as (
    select id as project_id, brand_id
    from ${source}.projects
),

brands as (
    select id as brand_id, name as brand_name
    from ${source}.brands
),

final as (
    select
        assets.asset_id,
        assets.project_id,
        assets.workflow_id,
        projects.brand_id,
        brands.brand_name,
        assets.asset_type,
        assets.review_status,
        assets.review_score,
        (assets.review_status is not null)::integer as is_reviewed,
        coalesce(assets.review_status = 'approved', false)::integer as is_approved,
        assets.created_at
    from assets
    inner join projects on assets.project_id = projects.project_id
    inner join brands on projects.brand_id = brands.brand_id
)

select * from final
