-- view: users
-- grain: one row per user
-- v2: the same columns; no CTEs, so PostgreSQL flattens the view and drops the per-user project
--     counts (a GROUP BY over every project) when a query does not use them (new signups)
-- columns:
--   user_id          bigint       the user
--   email            text         the user's email
--   created_at       timestamptz  when the user signed up (time column)
--   project_count    bigint       projects the user owns (0 when none)
--   last_project_at  timestamptz  when the user's latest project was created

select
    users.id as user_id,
    users.email,
    users.created_at,
    coalesce(project_counts.project_count, 0)::bigint as project_count,
    project_counts.last_project_at
from ${source}.users
left join (
    select user_id, count(*) as project_count, max(created_at) as last_project_at
    from ${source}.projects
    group by user_id
) as project_counts on users.id = project_counts.user_id
