-- table: user_project_counts (owned by the bundle, rewritten where it changed by every
--        `sparklio-bi rollups refresh`, which `serve` runs)
-- grain: one row per user who owns at least one project, counting the projects the last refresh
--        saw; rollup_state's row 'user_projects' holds that refresh's highest project id
-- why: chart 6.2 (projects per user) added up every project on each query (81 ms p95 at 90,909
--      projects); the users view (v3) adds these counts to the projects above that id, read live

create table ${analytics}.user_project_counts (
    user_id          bigint primary key,
    project_count    bigint not null,
    last_project_at  timestamptz not null
);
