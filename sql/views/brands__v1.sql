-- view: brands
-- grain: one row per brand and project; a brand without projects has one row with null project columns
-- columns:
--   brand_id            bigint       the brand
--   brand_name          text         brand name
--   brand_created_at    timestamptz  when the brand was created
--   project_id          bigint       a project of the brand; null when the brand has none
--   user_id             bigint       owner of that project
--   project_created_at  timestamptz  when that project was created (time column)

with brands as (
    select id as brand_id, name as brand_name, created_at as brand_created_at
    from ${source}.brands
),

projects as (
    select id as project_id, brand_id, user_id, created_at as project_created_at
    from ${source}.projects
),

final as (
    select
        brands.brand_id,
        brands.brand_name,
        brands.brand_created_at,
        projects.project_id,
        projects.user_id,
        projects.project_created_at
    from brands
    left join projects on brands.brand_id = projects.brand_id
)

select * from final
