-- view: projects
-- grain: one row per project
-- columns:
--   project_id    bigint       the project
--   project_name  text         project name
--   brand_id      bigint       brand the project is for
--   brand_name    text         brand name
--   user_id       bigint       user who owns the project
--   user_email    text         that user's email
--   created_at    timestamptz  when the project was created (time column)

with projects as (
    select id as project_id, name as project_name, brand_id, user_id, created_at
    from ${source}.projects
),

brands as (
    select id as brand_id, name as brand_name
    from ${source}.brands
),

users as (
    select id as user_id, email as user_email
    from ${source}.users
),

final as (
    select
        projects.project_id,
        projects.project_name,
        projects.brand_id,
        brands.brand_name,
        projects.user_id,
        users.user_email,
        projects.created_at
    from projects
    inner join brands on projects.brand_id = brands.brand_id
    inner join users on projects.user_id = users.user_id
)

select * from final
