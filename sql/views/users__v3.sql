-- view: users
-- grain: one row per user
-- v3: the same columns; the project counts are those the last rollup refresh kept
--     (user_project_counts) plus the projects above the highest id it saw, read live, instead of
--     a GROUP BY over every project on each query; both joins are on a unique key, so a query
--     that does not use the counts (new signups) still reads users alone
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
    (coalesce(counted.project_count, 0) + coalesce(recent.project_count, 0))::bigint as project_count,
    greatest(counted.last_project_at, recent.last_project_at) as last_project_at
from ${source}.users
left join ${analytics}.user_project_counts as counted on users.id = counted.user_id
left join (
    select user_id, count(*) as project_count, max(created_at) as last_project_at
    from ${source}.projects
    where
        id > coalesce((
            select last_id from ${analytics}.rollup_state
            where rollup = 'user_projects'
        ), 0)
    group by user_id
) as recent on users.id = recent.user_id
