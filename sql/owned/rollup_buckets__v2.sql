-- functions, one set per rollup <name> (agent, error, router, workflow, asset):
--   <name>_buckets(period, since, until): the rollup's rows for the raw rows created in
--     [since, until), per period ('hour', or 'microseconds': each row's own time; in
--     SPARKLIO_TIMEZONE); fills <name>_hours; PL/pgSQL, so each call is planned with its own
--     bounds (a few thousand rows at a range's ends: index lookups of their brands;
--     millions in a full build: hash joins)
--   <name>_days(since, until): whole days' rows of <name>_rollup, added up from <name>_hours
--   <name>_stats_between(since, until, slack): the rollup's rows for exactly the rows created
--     in [since, until) (null: unbounded), every row's period_start inside the range: whole days
--     from <name>_rollup, hours from <name>_hours, the seconds before the first whole hour and
--     after the last one (the rows after the watermark among them) from the raw view, labelled
--     with the start of their hour (or the range's start if later); with a slack, the raw rows
--     within it of either end come at their exact created_at, so a filter on period_start
--     whose ends are up to that far from since and until cuts them exactly (Superset computes
--     "now" twice per query: the bounds its dataset SQL gets and those of its own filter can
--     differ by a second)
-- and rollup_span(rollup, since, until, slack), the cut of a range into those parts; and
-- workflow_daily_between(since, until), chart 1.1's calendar of days for a range
-- v2: adds _days, _stats_between, rollup_span and workflow_daily_between; _buckets in PL/pgSQL
-- why: Superset gives a chart's time range to its dataset's SQL ({{ from_dttm }}, {{ to_dttm }}),
--      so a chart on <name>_stats_between equals the raw view's numbers for any range, reading
--      a few thousand rows; the *_stats views are <name>_stats_between(null, null)
-- bodies are quoted strings (the file is a string.Template: dollar quotes are not available), so
-- the functions do not pin the views and tables they read

create function ${analytics}.rollup_span(
    rollup text, since timestamptz, until timestamptz, slack interval default interval '0'
)
returns table (
    range_start timestamptz, core_start timestamptz, hours_from timestamptz, days_from timestamptz,
    days_until timestamptz, hours_until timestamptz, core_end timestamptz, range_end timestamptz
)
language sql stable
as '
    with bounds as (
        select
            coalesce(since, ''-infinity'') - slack as range_start,
            coalesce(since, ''-infinity'') + slack as core_start,
            greatest(coalesce(until, ''infinity''), coalesce(since, ''-infinity'')) + slack as range_end,
            greatest(coalesce(until, ''infinity'') - slack, coalesce(since, ''-infinity'') + slack) as core_end,
            coalesce(
                (select watermark from ${analytics}.rollup_state where rollup_state.rollup = rollup_span.rollup),
                ''-infinity''
            ) as watermark
    ),

    hours as (
        select
            range_start,
            core_start,
            core_end,
            range_end,
            least(
                case
                    when date_trunc(''hour'', core_start, ''${timezone}'') = core_start then core_start
                    else date_trunc(''hour'', core_start, ''${timezone}'') + interval ''1 hour''
                end,
                core_end
            ) as hours_from,
            case
                when watermark <= core_end then watermark
                else date_trunc(''hour'', core_end, ''${timezone}'')
            end as hours_end
        from bounds
    ),

    days as (
        select
            range_start,
            core_start,
            core_end,
            range_end,
            hours_from,
            greatest(hours_end, hours_from) as hours_until,
            least(
                case
                    when date_trunc(''day'', hours_from, ''${timezone}'') = hours_from then hours_from
                    else (date_trunc(''day'', hours_from at time zone ''${timezone}'') + interval ''1 day'')
                        at time zone ''${timezone}''
                end,
                greatest(hours_end, hours_from)
            ) as days_from
        from hours
    )

    select
        range_start,
        core_start,
        hours_from,
        days_from,
        greatest(date_trunc(''day'', hours_until, ''${timezone}''), days_from) as days_until,
        hours_until,
        core_end,
        range_end
    from days
';

create function ${analytics}.agent_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    executions bigint, successes bigint, latency_ms_sum bigint
)
language plpgsql stable
as '
#variable_conflict use_column
begin
    return query
    select
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, agent_name, model,
        count(*), sum(is_success), sum(latency_ms)
    from ${analytics}.agent_logs
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4, 5;
end
';

create function ${analytics}.agent_days(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    executions bigint, successes bigint, latency_ms_sum bigint
)
language sql stable
as '
    select
        date_trunc(''day'', period_start, ''${timezone}''), brand_id, brand_name, agent_name, model,
        sum(executions)::bigint, sum(successes)::bigint, sum(latency_ms_sum)::bigint
    from ${analytics}.agent_hours
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4, 5
';

create function ${analytics}.agent_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0'
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    executions bigint, successes bigint, latency_ms_sum bigint
)
language sql stable
as '
    select days.* from ${analytics}.rollup_span(''agent'', since, until, slack) as span
    inner join ${analytics}.agent_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.days_until
    union all
    select hours.* from ${analytics}.rollup_span(''agent'', since, until, slack) as span
    inner join ${analytics}.agent_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    union all
    select hours.* from ${analytics}.rollup_span(''agent'', since, until, slack) as span
    inner join ${analytics}.agent_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.executions, raw.successes, raw.latency_ms_sum
    from ${analytics}.rollup_span(''agent'', since, until, slack) as span
    cross join lateral ${analytics}.agent_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''agent'', since, until, slack) as span
    cross join lateral ${analytics}.agent_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''agent'', since, until, slack) as span
    cross join lateral ${analytics}.agent_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''agent'', since, until, slack) as span
    cross join lateral ${analytics}.agent_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create function ${analytics}.error_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    error_type text, failures bigint, still_failing bigint, recovered bigint,
    recovery_seconds_sum double precision
)
language plpgsql stable
as '
#variable_conflict use_column
begin
    return query
    select
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, agent_name, model, error_type,
        count(*), sum(1 - is_recovered), sum(is_recovered), sum(recovery_seconds)
    from ${analytics}.errors
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4, 5, 6;
end
';

create function ${analytics}.error_days(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    error_type text, failures bigint, still_failing bigint, recovered bigint,
    recovery_seconds_sum double precision
)
language sql stable
as '
    select
        date_trunc(''day'', period_start, ''${timezone}''), brand_id, brand_name, agent_name, model, error_type,
        sum(failures)::bigint, sum(still_failing)::bigint, sum(recovered)::bigint, sum(recovery_seconds_sum)
    from ${analytics}.error_hours
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4, 5, 6
';

create function ${analytics}.error_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0'
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    error_type text, failures bigint, still_failing bigint, recovered bigint,
    recovery_seconds_sum double precision
)
language sql stable
as '
    select days.* from ${analytics}.rollup_span(''error'', since, until, slack) as span
    inner join ${analytics}.error_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.days_until
    union all
    select hours.* from ${analytics}.rollup_span(''error'', since, until, slack) as span
    inner join ${analytics}.error_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    union all
    select hours.* from ${analytics}.rollup_span(''error'', since, until, slack) as span
    inner join ${analytics}.error_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.error_type, raw.failures, raw.still_failing, raw.recovered, raw.recovery_seconds_sum
    from ${analytics}.rollup_span(''error'', since, until, slack) as span
    cross join lateral ${analytics}.error_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''error'', since, until, slack) as span
    cross join lateral ${analytics}.error_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''error'', since, until, slack) as span
    cross join lateral ${analytics}.error_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''error'', since, until, slack) as span
    cross join lateral ${analytics}.error_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create function ${analytics}.router_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, intent_type text, selected_model text, risk_level text,
    decisions bigint, context_before_sum bigint, context_after_sum bigint
)
language plpgsql stable
as '
#variable_conflict use_column
begin
    return query
    select
        date_trunc(period, created_at, ''${timezone}''), intent_type, selected_model, risk_level,
        count(*), sum(context_size_before), sum(context_size_after)
    from ${analytics}.router_logs
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4;
end
';

create function ${analytics}.router_days(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, intent_type text, selected_model text, risk_level text,
    decisions bigint, context_before_sum bigint, context_after_sum bigint
)
language sql stable
as '
    select
        date_trunc(''day'', period_start, ''${timezone}''), intent_type, selected_model, risk_level,
        sum(decisions)::bigint, sum(context_before_sum)::bigint, sum(context_after_sum)::bigint
    from ${analytics}.router_hours
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4
';

create function ${analytics}.router_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0'
)
returns table (
    period_start timestamptz, intent_type text, selected_model text, risk_level text,
    decisions bigint, context_before_sum bigint, context_after_sum bigint
)
language sql stable
as '
    select days.* from ${analytics}.rollup_span(''router'', since, until, slack) as span
    inner join ${analytics}.router_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.days_until
    union all
    select hours.* from ${analytics}.rollup_span(''router'', since, until, slack) as span
    inner join ${analytics}.router_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    union all
    select hours.* from ${analytics}.rollup_span(''router'', since, until, slack) as span
    inner join ${analytics}.router_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    union all
    select greatest(raw.period_start, span.core_start), raw.intent_type, raw.selected_model, raw.risk_level, raw.decisions, raw.context_before_sum, raw.context_after_sum
    from ${analytics}.rollup_span(''router'', since, until, slack) as span
    cross join lateral ${analytics}.router_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''router'', since, until, slack) as span
    cross join lateral ${analytics}.router_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''router'', since, until, slack) as span
    cross join lateral ${analytics}.router_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''router'', since, until, slack) as span
    cross join lateral ${analytics}.router_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create function ${analytics}.workflow_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, status text, runs bigint,
    durations bigint, duration_seconds_sum double precision
)
language plpgsql stable
as '
#variable_conflict use_column
begin
    return query
    select
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, status,
        count(*), count(duration_seconds), sum(duration_seconds)
    from ${analytics}.workflows
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4;
end
';

create function ${analytics}.workflow_days(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, status text, runs bigint,
    durations bigint, duration_seconds_sum double precision
)
language sql stable
as '
    select
        date_trunc(''day'', period_start, ''${timezone}''), brand_id, brand_name, status,
        sum(runs)::bigint, sum(durations)::bigint, sum(duration_seconds_sum)
    from ${analytics}.workflow_hours
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4
';

create function ${analytics}.workflow_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0'
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, status text, runs bigint,
    durations bigint, duration_seconds_sum double precision
)
language sql stable
as '
    select days.* from ${analytics}.rollup_span(''workflow'', since, until, slack) as span
    inner join ${analytics}.workflow_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.days_until
    union all
    select hours.* from ${analytics}.rollup_span(''workflow'', since, until, slack) as span
    inner join ${analytics}.workflow_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    union all
    select hours.* from ${analytics}.rollup_span(''workflow'', since, until, slack) as span
    inner join ${analytics}.workflow_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.status, raw.runs, raw.durations, raw.duration_seconds_sum
    from ${analytics}.rollup_span(''workflow'', since, until, slack) as span
    cross join lateral ${analytics}.workflow_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''workflow'', since, until, slack) as span
    cross join lateral ${analytics}.workflow_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''workflow'', since, until, slack) as span
    cross join lateral ${analytics}.workflow_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''workflow'', since, until, slack) as span
    cross join lateral ${analytics}.workflow_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create function ${analytics}.asset_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, asset_type text, assets bigint,
    reviewed bigint, approved bigint, scored bigint, review_score_sum numeric
)
language plpgsql stable
as '
#variable_conflict use_column
begin
    return query
    select
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, asset_type,
        count(*), sum(is_reviewed), sum(is_approved), count(review_score), sum(review_score)
    from ${analytics}.assets
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4;
end
';

create function ${analytics}.asset_days(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, asset_type text, assets bigint,
    reviewed bigint, approved bigint, scored bigint, review_score_sum numeric
)
language sql stable
as '
    select
        date_trunc(''day'', period_start, ''${timezone}''), brand_id, brand_name, asset_type,
        sum(assets)::bigint, sum(reviewed)::bigint, sum(approved)::bigint, sum(scored)::bigint, sum(review_score_sum)
    from ${analytics}.asset_hours
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4
';

create function ${analytics}.asset_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0'
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, asset_type text, assets bigint,
    reviewed bigint, approved bigint, scored bigint, review_score_sum numeric
)
language sql stable
as '
    select days.* from ${analytics}.rollup_span(''asset'', since, until, slack) as span
    inner join ${analytics}.asset_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.days_until
    union all
    select hours.* from ${analytics}.rollup_span(''asset'', since, until, slack) as span
    inner join ${analytics}.asset_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    union all
    select hours.* from ${analytics}.rollup_span(''asset'', since, until, slack) as span
    inner join ${analytics}.asset_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.asset_type, raw.assets, raw.reviewed, raw.approved, raw.scored, raw.review_score_sum
    from ${analytics}.rollup_span(''asset'', since, until, slack) as span
    cross join lateral ${analytics}.asset_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''asset'', since, until, slack) as span
    cross join lateral ${analytics}.asset_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''asset'', since, until, slack) as span
    cross join lateral ${analytics}.asset_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from ${analytics}.rollup_span(''asset'', since, until, slack) as span
    cross join lateral ${analytics}.asset_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create function ${analytics}.workflow_daily_between(
    since timestamptz, until timestamptz, slack interval default interval '0'
)
returns table (
    day timestamptz, brand_id bigint, brand_name text, workflow_count bigint, completed_count bigint,
    failed_count bigint
)
language sql stable
as '
    with span as (
        select * from ${analytics}.rollup_span(''workflow'', since, until, slack)
    ),

    stats as (
        select * from ${analytics}.workflow_stats_between(since, until, slack)
    ),

    per_day as (
        select
            (stats.period_start at time zone ''${timezone}'')::date as day,
            stats.brand_id,
            sum(stats.runs) as workflow_count,
            coalesce(sum(stats.runs) filter (where stats.status = ''completed''), 0) as completed_count,
            coalesce(sum(stats.runs) filter (where stats.status = ''failed''), 0) as failed_count
        from stats
        cross join span
        where stats.period_start >= span.core_start and stats.period_start < span.core_end
        group by 1, 2
    ),

    edges as (
        select
            stats.period_start as day,
            stats.brand_id,
            stats.brand_name,
            sum(stats.runs)::bigint as workflow_count,
            coalesce(sum(stats.runs) filter (where stats.status = ''completed''), 0)::bigint as completed_count,
            coalesce(sum(stats.runs) filter (where stats.status = ''failed''), 0)::bigint as failed_count
        from stats
        cross join span
        where stats.period_start < span.core_start or stats.period_start >= span.core_end
        group by 1, 2, 3
    ),

    today as (
        select (now() at time zone ''${timezone}'')::date as day
    ),

    calendar as (
        select days.day::date as day
        from today
        cross join span
        cross join generate_series(
            greatest(
                least((select min(day) from per_day), today.day - 89),
                (span.core_start at time zone ''${timezone}'')::date
            ),
            least(today.day, (span.core_end at time zone ''${timezone}'' - interval ''1 microsecond'')::date),
            interval ''1 day''
        ) as days (day)
    )

    select
        greatest(calendar.day::timestamp at time zone ''${timezone}'', span.core_start),
        brand_names.brand_id,
        brand_names.brand_name,
        coalesce(per_day.workflow_count, 0)::bigint,
        coalesce(per_day.completed_count, 0)::bigint,
        coalesce(per_day.failed_count, 0)::bigint
    from calendar
    cross join span
    cross join ${analytics}.brand_names
    left join per_day on calendar.day = per_day.day and brand_names.brand_id = per_day.brand_id
    union all
    select * from edges
';
