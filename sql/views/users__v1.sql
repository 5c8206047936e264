-- view: users
-- grain: one row per user
-- columns:
--   user_id          bigint       the user
--   email            text         the user's email
--   created_at       timestamptz  when the user signed up (time column)
--   project_count    bigint       projects the user owns (0 when none)
--   last_project_at  timestamptz  when the user's latest project was created

with users as (
    select id as user_id, email, created_at
    from ${source}.users
),

project_counts as (
    select user_id, count(*) as project_count, max(created_at) as last_project_at
    from ${source}.projects
    group by user_id
),

final as (
    select
        users.user_id,
        users.email,
        users.created_at,
        coalesce(project_counts.project_count, 0)::bigint as project_count,
        project_counts.last_project_at
    from users
    left join project_counts on users.user_id = project_counts.user_id
)

select * from final
