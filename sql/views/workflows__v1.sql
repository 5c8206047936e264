-- view: workflows
-- grain: one row per workflow run
-- columns:
--   workflow_id       bigint            the workflow run
--   project_id        bigint            project the run belongs to
--   brand_id          bigint            brand of that project
--   brand_name        text              brand name
--   user_id           bigint            owner of the project
--   status            text              pending, running, completed, failed or cancelled
--   created_at        timestamptz       when the run started (time column)
--   completed_at      timestamptz       when it finished; null while running
--   duration_seconds  double precision  completed_at - created_at in seconds; null while running

with workflows as (
    select id as workflow_id, project_id, status, created_at, completed_at
    from ${source}.workflows
),

projects as (
    select id as project_id, brand_id, user_id
    from ${source}.projects
),

brands as (
    select id as brand_id, name as brand_name
    from ${source}.brands
),

final as (
    select
        workflows.workflow_id,
        workflows.project_id,
        projects.brand_id,
        brands.brand_name,
        projects.user_id,
        workflows.status,
        workflows.created_at,
        workflows.completed_at,
        extract(epoch from workflows.completed_at - workflows.created_at)::double precision as duration_seconds
    from workflows
    inner join projects on workflows.project_id = projects.project_id
    inner join brands on projects.brand_id = brands.brand_id
)

select * from final
