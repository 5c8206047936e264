-- view: projects
-- grain: one row per project
-- v2: the same columns; left joins (brand and user are NOT NULL foreign keys, so no row changes)
--     that PostgreSQL drops when a query does not use their columns (daily active users reads
--     projects alone), and no CTEs, so the view is flattened into the query (see agent_logs v3)
-- columns:
--   project_id    bigint       the project
--   project_name  text         project name
--   brand_id      bigint       brand the project is for
--   brand_name    text         brand name
--   user_id       bigint       user who owns the project
--   user_email    text         that user's email
--   created_at    timestamptz  when the project was created (time column)

select
    projects.id as project_id,
    projects.name as project_name,
    projects.brand_id,
    brands.name as brand_name,
    projects.user_id,
    users.email as user_email,
    projects.created_at
from ${source}.projects
left join ${source}.brands on projects.brand_id = brands.id
left join ${source}.users on projects.user_id = users.id
