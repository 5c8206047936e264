-- functions of the active users (chart 6.1), days in SPARKLIO_TIMEZONE:
--   active_user_day_rows(since, until): the distinct (day, brand, user) of the projects created
--     in [since, until); what the rollup refresh writes to active_user_days
--   projects_after(id): the projects above that id (PL/pgSQL: planned with the id, so an index
--     range of the newest few instead of a scan)
--   active_users_span(since, until, slack, coarsest): the cut of a range into whole days (from
--     active_user_days, as the last refresh saw them, plus the projects above its highest id) and
--     the rest of each end (from the projects view); with 'hour' or 'exact' every project at its
--     own time (a series by hour or finer, or a filter on period_start other than the range's ends)
--   active_users_between(since, until, slack, coarsest): one row per day (labelled with its
--     start, or the range's start for the first day when that is later), brand and user who created
--     a project in [since, until) that day (with 'hour' or 'exact': one row per project, at its
--     created_at); count the users with COUNT(DISTINCT user_id); with a slack, the projects within
--     it of either end come at their exact created_at, so that Superset's own filter on
--     period_start (bounds up to a second off the SQL's) cuts them exactly
--   active_users_all_brands_between(...): the same over every brand (brand_id and brand_name
--     null): one row per day and user, read when a query names no brand column
-- why: a day's distinct users cannot be added up from its hours, so the whole days are the
--      distinct pairs themselves: 32,822 (day, user) rows instead of 90,909 projects at scale 1000
-- bodies are quoted strings (the file is a string.Template: dollar quotes are not available)

create or replace function ${analytics}.active_user_day_rows(since timestamptz, until timestamptz)
returns table (day timestamptz, brand_id bigint, user_id bigint)
language sql stable
as '
    select distinct date_trunc(''day'', projects.created_at, ''${timezone}''), projects.brand_id, projects.user_id
    from ${analytics}.projects
    where projects.created_at >= since and projects.created_at < until
';

create or replace function ${analytics}.projects_after(after bigint)
returns table (created_at timestamptz, brand_id bigint, brand_name text, user_id bigint)
language plpgsql stable
as '
#variable_conflict use_column
begin
    return query
    select projects.created_at, projects.brand_id, projects.brand_name, projects.user_id
    from ${analytics}.projects
    where projects.project_id > after;
end
';

create or replace function ${analytics}.active_users_span(
    since timestamptz, until timestamptz, slack interval default interval '0', coarsest text default 'day'
)
returns table (
    range_start timestamptz, core_start timestamptz, days_from timestamptz, days_until timestamptz,
    core_end timestamptz, range_end timestamptz, last_id bigint
)
language plpgsql stable
rows 1
as '
begin
    select state.last_id into last_id from ${analytics}.rollup_state as state where state.rollup = ''active_users'';
    last_id := coalesce(last_id, -1);  -- no refresh yet: every project is read live
    range_start := coalesce(since, ''-infinity'') - slack;
    core_start := coalesce(since, ''-infinity'') + slack;
    range_end := greatest(coalesce(until, ''infinity''), coalesce(since, ''-infinity'')) + slack;
    core_end := greatest(coalesce(until, ''infinity'') - slack, core_start);
    if coarsest in (''exact'', ''hour'') then  -- every project at its own time
        core_start := range_end;
        core_end := range_end;
        days_from := range_end;
        days_until := range_end;
        return next;
        return;
    end if;
    if isfinite(core_start) and date_trunc(''day'', core_start, ''${timezone}'') <> core_start then
        days_from := (date_trunc(''day'', core_start at time zone ''${timezone}'') + interval ''1 day'')
            at time zone ''${timezone}'';
    else
        days_from := core_start;
    end if;
    if isfinite(core_end) then
        days_until := date_trunc(''day'', core_end, ''${timezone}'');
    else
        days_until := core_end;
    end if;
    if days_from >= days_until then  -- no whole day: all of it from the projects
        days_from := core_end;
        days_until := core_end;
    end if;
    return next;
end
';

create or replace function ${analytics}.active_users_between(
    since timestamptz, until timestamptz, slack interval default interval '0', coarsest text default 'day'
)
returns table (period_start timestamptz, brand_id bigint, brand_name text, user_id bigint)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.active_users_span(since, until, slack, coarsest)
    )

    select days.day, days.brand_id, brand_names.brand_name, days.user_id
    from span
    inner join ${analytics}.active_user_days as days on days.day >= span.days_from and days.day < span.days_until
    left join ${analytics}.brand_names on days.brand_id = brand_names.brand_id
    union all
    select distinct date_trunc(''day'', recent.created_at, ''${timezone}''), recent.brand_id, recent.brand_name, recent.user_id
    from span
    cross join lateral ${analytics}.projects_after(span.last_id) as recent
    where recent.created_at >= span.days_from and recent.created_at < span.days_until and not exists (
        select from ${analytics}.active_user_days as days
        where days.day = date_trunc(''day'', recent.created_at, ''${timezone}'')
            and days.brand_id = recent.brand_id and days.user_id = recent.user_id
    )
    union all
    select distinct greatest(date_trunc(''day'', raw.created_at, ''${timezone}''), span.core_start), raw.brand_id, raw.brand_name, raw.user_id
    from span
    inner join ${analytics}.projects as raw
        on (raw.created_at >= span.core_start and raw.created_at < span.days_from)
        or (raw.created_at >= span.days_until and raw.created_at < span.core_end)
    union all
    select raw.created_at, raw.brand_id, raw.brand_name, raw.user_id
    from span
    inner join ${analytics}.projects as raw
        on (raw.created_at >= span.range_start and raw.created_at < span.core_start)
        or (raw.created_at >= span.core_end and raw.created_at < span.range_end)
';

create or replace function ${analytics}.active_users_all_brands_between(
    since timestamptz, until timestamptz, slack interval default interval '0', coarsest text default 'day'
)
returns table (period_start timestamptz, brand_id bigint, brand_name text, user_id bigint)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.active_users_span(since, until, slack, coarsest)
    )

    select days.day, null::bigint, null::text, days.user_id
    from span
    inner join ${analytics}.active_user_days_all_brands as days on days.day >= span.days_from and days.day < span.days_until
    union all
    select distinct date_trunc(''day'', recent.created_at, ''${timezone}''), null::bigint, null::text, recent.user_id
    from span
    cross join lateral ${analytics}.projects_after(span.last_id) as recent
    where recent.created_at >= span.days_from and recent.created_at < span.days_until and not exists (
        select from ${analytics}.active_user_days_all_brands as days
        where days.day = date_trunc(''day'', recent.created_at, ''${timezone}'') and days.user_id = recent.user_id
    )
    union all
    select distinct greatest(date_trunc(''day'', raw.created_at, ''${timezone}''), span.core_start), null::bigint, null::text, raw.user_id
    from span
    inner join ${analytics}.projects as raw
        on (raw.created_at >= span.core_start and raw.created_at < span.days_from)
        or (raw.created_at >= span.days_until and raw.created_at < span.core_end)
    union all
    select raw.created_at, null::bigint, null::text, raw.user_id
    from span
    inner join ${analytics}.projects as raw
        on (raw.created_at >= span.range_start and raw.created_at < span.core_start)
        or (raw.created_at >= span.core_end and raw.created_at < span.range_end)
';
