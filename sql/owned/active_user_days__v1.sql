-- tables: active_user_days and active_user_days_all_brands (owned by the bundle, rewritten where
--         they changed by every `sparklio-bi rollups refresh`, which `serve` runs)
-- grain: one row per day (SPARKLIO_TIMEZONE) and brand and user who created a project that day,
--        and one per day and user over every brand, as the last refresh saw the projects;
--        rollup_state's row 'active_users' holds that refresh's highest project id
-- why: chart 6.1 (daily active users) counted distinct users over every project on each query
--      (65-70 ms p95 at 90,909 projects over a quarter or more); a day's distinct users cannot be
--      added up from hours, so these rows are the distinct (day, user) pairs themselves, read by
--      active_users_between (sql/bundle/active_users_buckets__v1.sql)

create table ${analytics}.active_user_days (
    day       timestamptz not null,
    brand_id  bigint not null,
    user_id   bigint not null,
    primary key (day, brand_id, user_id)
);

create table ${analytics}.active_user_days_all_brands (
    day      timestamptz not null,
    user_id  bigint not null,
    primary key (day, user_id)
);
