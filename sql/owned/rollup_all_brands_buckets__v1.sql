-- functions, one set per rollup <name> with brand columns (agent, error, workflow, asset), the
-- rollups added up over every brand (sql/bundle/rollup_all_brands__v1.sql):
--   <name>_buckets_all_brands(period, since, until): <name>_buckets without the brand (brand_id
--     and brand_name null), the raw view's rows in [since, until) per period and other dimensions
--   <name>_stats_all_brands_between(since, until, slack, coarsest): <name>_stats_between
--     (rollup_buckets__v4.sql) cut the same way, by the same rollup_span, from the tables
--     <name>_hours_all_brands, <name>_rollup_all_brands, <name>_months_all_brands and
--     <name>_buckets_all_brands: the same sums per period and dimension values other than the
--     brand, in a few rows per period instead of one per brand
--   workflow_daily_all_brands_between(since, until, slack): workflow_daily_between's calendar of
--     days for every brand together (one row a day, not one a day and brand)
-- why: a chart that neither shows nor filters the brand (most of them, by default) adds up all of
--      the brands' rows: at 10M executions a day of agent_rollup is about 4,000 rows (brands x
--      agents x models), a day of agent_rollup_all_brands a few dozen; Superset's SQL mutator
--      (sparklio_bi.assets.layout.all_brands_when_unused) calls these when the query names no
--      brand column (a brand filter, a row level security rule, a group by brand keep the rows
--      per brand)
-- bodies are quoted strings (the file is a string.Template: dollar quotes are not available)

create or replace function ${analytics}.agent_buckets_all_brands(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    executions bigint, successes bigint, latency_ms_sum bigint
)
language plpgsql stable
set random_page_cost = 1.1
as '
#variable_conflict use_column
begin
    return query
    select
        date_trunc(period, created_at, ''${timezone}''), null::bigint, null::text, agent_name, model,
        count(*), sum(is_success), sum(latency_ms)
    from ${analytics}.agent_logs
    where created_at >= since and created_at < until
    group by 1, 4, 5;
end
';

create or replace function ${analytics}.agent_stats_all_brands_between(
    since timestamptz, until timestamptz, slack interval default interval '0',
    coarsest text default 'day'
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    executions bigint, successes bigint, latency_ms_sum bigint
)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.rollup_span(''agent'', since, until, slack, coarsest)
    )

    select months.* from span
    inner join ${analytics}.agent_months_all_brands as months
        on months.period_start >= span.months_from and months.period_start < span.months_until
    where months.period_start is distinct from span.first_month and months.period_start is distinct from span.last_month
    union all
    select days.* from span
    inner join ${analytics}.agent_rollup_all_brands as days
        on days.period_start >= span.days_from and days.period_start < span.months_from
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select days.* from span
    inner join ${analytics}.agent_rollup_all_brands as days
        on days.period_start >= span.months_until and days.period_start < span.days_until
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select hours.* from span
    inner join ${analytics}.agent_hours_all_brands as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select hours.* from span
    inner join ${analytics}.agent_hours_all_brands as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select cut.period_start, cut.brand_id, cut.brand_name, cut.agent_name, cut.model, sum(cut.executions)::bigint, sum(cut.successes)::bigint, sum(cut.latency_ms_sum)::bigint
    from (
        select greatest(months.period_start, span.core_start) as period_start, months.brand_id, months.brand_name, months.agent_name, months.model, months.executions, months.successes, months.latency_ms_sum
        from span
        inner join ${analytics}.agent_months_all_brands as months
            on months.period_start = span.first_month or months.period_start = span.last_month
        union all
        select greatest(days.period_start, span.core_start), days.brand_id, days.brand_name, days.agent_name, days.model, days.executions, days.successes, days.latency_ms_sum
        from span
        inner join ${analytics}.agent_rollup_all_brands as days
            on days.period_start = span.first_day or days.period_start = span.last_day
        union all
        select greatest(hours.period_start, span.core_start), hours.brand_id, hours.brand_name, hours.agent_name, hours.model, hours.executions, hours.successes, hours.latency_ms_sum
        from span
        inner join ${analytics}.agent_hours_all_brands as hours
            on hours.period_start = span.first_hour or hours.period_start = span.last_hour
        union all
        select greatest(span.hours_from, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, -raw.executions, -raw.successes, -raw.latency_ms_sum
        from span
        cross join lateral ${analytics}.agent_buckets_all_brands(''hour'', span.hours_from, span.core_start) as raw
        union all
        select greatest(coalesce(span.last_month, span.last_day, span.last_hour), span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, -raw.executions, -raw.successes, -raw.latency_ms_sum
        from span
        cross join lateral ${analytics}.agent_buckets_all_brands(''hour'', span.core_end, span.hours_until) as raw
    ) as cut
    group by cut.period_start, cut.brand_id, cut.brand_name, cut.agent_name, cut.model
    having sum(cut.executions) <> 0
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.executions, raw.successes, raw.latency_ms_sum
    from span
    cross join lateral ${analytics}.agent_buckets_all_brands(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.agent_buckets_all_brands(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.agent_buckets_all_brands(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.agent_buckets_all_brands(''microseconds'', span.core_end, span.range_end) as raw
';

create or replace function ${analytics}.error_buckets_all_brands(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    error_type text, failures bigint, still_failing bigint, recovered bigint,
    recovery_seconds_sum double precision
)
language plpgsql stable
set random_page_cost = 1.1
as '
#variable_conflict use_column
begin
    return query
    select
        date_trunc(period, created_at, ''${timezone}''), null::bigint, null::text, agent_name, model, error_type,
        count(*), sum(1 - is_recovered), sum(is_recovered), sum(recovery_seconds)
    from ${analytics}.errors
    where created_at >= since and created_at < until
    group by 1, 4, 5, 6;
end
';

create or replace function ${analytics}.error_stats_all_brands_between(
    since timestamptz, until timestamptz, slack interval default interval '0',
    coarsest text default 'day'
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    error_type text, failures bigint, still_failing bigint, recovered bigint,
    recovery_seconds_sum double precision
)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.rollup_span(''error'', since, until, slack, coarsest)
    )

    select months.* from span
    inner join ${analytics}.error_months_all_brands as months
        on months.period_start >= span.months_from and months.period_start < span.months_until
    where months.period_start is distinct from span.first_month and months.period_start is distinct from span.last_month
    union all
    select days.* from span
    inner join ${analytics}.error_rollup_all_brands as days
        on days.period_start >= span.days_from and days.period_start < span.months_from
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select days.* from span
    inner join ${analytics}.error_rollup_all_brands as days
        on days.period_start >= span.months_until and days.period_start < span.days_until
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select hours.* from span
    inner join ${analytics}.error_hours_all_brands as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select hours.* from span
    inner join ${analytics}.error_hours_all_brands as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select cut.period_start, cut.brand_id, cut.brand_name, cut.agent_name, cut.model, cut.error_type, sum(cut.failures)::bigint, sum(cut.still_failing)::bigint, sum(cut.recovered)::bigint, case when sum(cut.recovered) <> 0 then sum(cut.recovery_seconds_sum) end
    from (
        select greatest(months.period_start, span.core_start) as period_start, months.brand_id, months.brand_name, months.agent_name, months.model, months.error_type, months.failures, months.still_failing, months.recovered, months.recovery_seconds_sum
        from span
        inner join ${analytics}.error_months_all_brands as months
            on months.period_start = span.first_month or months.period_start = span.last_month
        union all
        select greatest(days.period_start, span.core_start), days.brand_id, days.brand_name, days.agent_name, days.model, days.error_type, days.failures, days.still_failing, days.recovered, days.recovery_seconds_sum
        from span
        inner join ${analytics}.error_rollup_all_brands as days
            on days.period_start = span.first_day or days.period_start = span.last_day
        union all
        select greatest(hours.period_start, span.core_start), hours.brand_id, hours.brand_name, hours.agent_name, hours.model, hours.error_type, hours.failures, hours.still_failing, hours.recovered, hours.recovery_seconds_sum
        from span
        inner join ${analytics}.error_hours_all_brands as hours
            on hours.period_start = span.first_hour or hours.period_start = span.last_hour
        union all
        select greatest(span.hours_from, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.error_type, -raw.failures, -raw.still_failing, -raw.recovered, -raw.recovery_seconds_sum
        from span
        cross join lateral ${analytics}.error_buckets_all_brands(''hour'', span.hours_from, span.core_start) as raw
        union all
        select greatest(coalesce(span.last_month, span.last_day, span.last_hour), span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.error_type, -raw.failures, -raw.still_failing, -raw.recovered, -raw.recovery_seconds_sum
        from span
        cross join lateral ${analytics}.error_buckets_all_brands(''hour'', span.core_end, span.hours_until) as raw
    ) as cut
    group by cut.period_start, cut.brand_id, cut.brand_name, cut.agent_name, cut.model, cut.error_type
    having sum(cut.failures) <> 0
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.error_type, raw.failures, raw.still_failing, raw.recovered, raw.recovery_seconds_sum
    from span
    cross join lateral ${analytics}.error_buckets_all_brands(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.error_buckets_all_brands(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.error_buckets_all_brands(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.error_buckets_all_brands(''microseconds'', span.core_end, span.range_end) as raw
';

create or replace function ${analytics}.workflow_buckets_all_brands(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, status text, runs bigint,
    durations bigint, duration_seconds_sum double precision
)
language plpgsql stable
set random_page_cost = 1.1
as '
#variable_conflict use_column
begin
    return query
    select
        date_trunc(period, created_at, ''${timezone}''), null::bigint, null::text, status,
        count(*), count(duration_seconds), sum(duration_seconds)
    from ${analytics}.workflows
    where created_at >= since and created_at < until
    group by 1, 4;
end
';

create or replace function ${analytics}.workflow_stats_all_brands_between(
    since timestamptz, until timestamptz, slack interval default interval '0',
    coarsest text default 'day'
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, status text, runs bigint,
    durations bigint, duration_seconds_sum double precision
)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.rollup_span(''workflow'', since, until, slack, coarsest)
    )

    select months.* from span
    inner join ${analytics}.workflow_months_all_brands as months
        on months.period_start >= span.months_from and months.period_start < span.months_until
    where months.period_start is distinct from span.first_month and months.period_start is distinct from span.last_month
    union all
    select days.* from span
    inner join ${analytics}.workflow_rollup_all_brands as days
        on days.period_start >= span.days_from and days.period_start < span.months_from
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select days.* from span
    inner join ${analytics}.workflow_rollup_all_brands as days
        on days.period_start >= span.months_until and days.period_start < span.days_until
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select hours.* from span
    inner join ${analytics}.workflow_hours_all_brands as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select hours.* from span
    inner join ${analytics}.workflow_hours_all_brands as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select cut.period_start, cut.brand_id, cut.brand_name, cut.status, sum(cut.runs)::bigint, sum(cut.durations)::bigint, case when sum(cut.durations) <> 0 then sum(cut.duration_seconds_sum) end
    from (
        select greatest(months.period_start, span.core_start) as period_start, months.brand_id, months.brand_name, months.status, months.runs, months.durations, months.duration_seconds_sum
        from span
        inner join ${analytics}.workflow_months_all_brands as months
            on months.period_start = span.first_month or months.period_start = span.last_month
        union all
        select greatest(days.period_start, span.core_start), days.brand_id, days.brand_name, days.status, days.runs, days.durations, days.duration_seconds_sum
        from span
        inner join ${analytics}.workflow_rollup_all_brands as days
            on days.period_start = span.first_day or days.period_start = span.last_day
        union all
        select greatest(hours.period_start, span.core_start), hours.brand_id, hours.brand_name, hours.status, hours.runs, hours.durations, hours.duration_seconds_sum
        from span
        inner join ${analytics}.workflow_hours_all_brands as hours
            on hours.period_start = span.first_hour or hours.period_start = span.last_hour
        union all
        select greatest(span.hours_from, span.core_start), raw.brand_id, raw.brand_name, raw.status, -raw.runs, -raw.durations, -raw.duration_seconds_sum
        from span
        cross join lateral ${analytics}.workflow_buckets_all_brands(''hour'', span.hours_from, span.core_start) as raw
        union all
        select greatest(coalesce(span.last_month, span.last_day, span.last_hour), span.core_start), raw.brand_id, raw.brand_name, raw.status, -raw.runs, -raw.durations, -raw.duration_seconds_sum
        from span
        cross join lateral ${analytics}.workflow_buckets_all_brands(''hour'', span.core_end, span.hours_until) as raw
    ) as cut
    group by cut.period_start, cut.brand_id, cut.brand_name, cut.status
    having sum(cut.runs) <> 0
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.status, raw.runs, raw.durations, raw.duration_seconds_sum
    from span
    cross join lateral ${analytics}.workflow_buckets_all_brands(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.workflow_buckets_all_brands(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.workflow_buckets_all_brands(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.workflow_buckets_all_brands(''microseconds'', span.core_end, span.range_end) as raw
';

create or replace function ${analytics}.asset_buckets_all_brands(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, asset_type text, assets bigint,
    reviewed bigint, approved bigint, scored bigint, review_score_sum numeric
)
language plpgsql stable
set random_page_cost = 1.1
as '
#variable_conflict use_column
begin
    return query
    select
        date_trunc(period, created_at, ''${timezone}''), null::bigint, null::text, asset_type,
        count(*), sum(is_reviewed), sum(is_approved), count(review_score), sum(review_score)
    from ${analytics}.assets
    where created_at >= since and created_at < until
    group by 1, 4;
end
';

create or replace function ${analytics}.asset_stats_all_brands_between(
    since timestamptz, until timestamptz, slack interval default interval '0',
    coarsest text default 'day'
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, asset_type text, assets bigint,
    reviewed bigint, approved bigint, scored bigint, review_score_sum numeric
)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.rollup_span(''asset'', since, until, slack, coarsest)
    )

    select months.* from span
    inner join ${analytics}.asset_months_all_brands as months
        on months.period_start >= span.months_from and months.period_start < span.months_until
    where months.period_start is distinct from span.first_month and months.period_start is distinct from span.last_month
    union all
    select days.* from span
    inner join ${analytics}.asset_rollup_all_brands as days
        on days.period_start >= span.days_from and days.period_start < span.months_from
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select days.* from span
    inner join ${analytics}.asset_rollup_all_brands as days
        on days.period_start >= span.months_until and days.period_start < span.days_until
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select hours.* from span
    inner join ${analytics}.asset_hours_all_brands as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select hours.* from span
    inner join ${analytics}.asset_hours_all_brands as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select cut.period_start, cut.brand_id, cut.brand_name, cut.asset_type, sum(cut.assets)::bigint, sum(cut.reviewed)::bigint, sum(cut.approved)::bigint, sum(cut.scored)::bigint, case when sum(cut.scored) <> 0 then sum(cut.review_score_sum) end
    from (
        select greatest(months.period_start, span.core_start) as period_start, months.brand_id, months.brand_name, months.asset_type, months.assets, months.reviewed, months.approved, months.scored, months.review_score_sum
        from span
        inner join ${analytics}.asset_months_all_brands as months
            on months.period_start = span.first_month or months.period_start = span.last_month
        union all
        select greatest(days.period_start, span.core_start), days.brand_id, days.brand_name, days.asset_type, days.assets, days.reviewed, days.approved, days.scored, days.review_score_sum
        from span
        inner join ${analytics}.asset_rollup_all_brands as days
            on days.period_start = span.first_day or days.period_start = span.last_day
        union all
        select greatest(hours.period_start, span.core_start), hours.brand_id, hours.brand_name, hours.asset_type, hours.assets, hours.reviewed, hours.approved, hours.scored, hours.review_score_sum
        from span
        inner join ${analytics}.asset_hours_all_brands as hours
            on hours.period_start = span.first_hour or hours.period_start = span.last_hour
        union all
        select greatest(span.hours_from, span.core_start), raw.brand_id, raw.brand_name, raw.asset_type, -raw.assets, -raw.reviewed, -raw.approved, -raw.scored, -raw.review_score_sum
        from span
        cross join lateral ${analytics}.asset_buckets_all_brands(''hour'', span.hours_from, span.core_start) as raw
        union all
        select greatest(coalesce(span.last_month, span.last_day, span.last_hour), span.core_start), raw.brand_id, raw.brand_name, raw.asset_type, -raw.assets, -raw.reviewed, -raw.approved, -raw.scored, -raw.review_score_sum
        from span
        cross join lateral ${analytics}.asset_buckets_all_brands(''hour'', span.core_end, span.hours_until) as raw
    ) as cut
    group by cut.period_start, cut.brand_id, cut.brand_name, cut.asset_type
    having sum(cut.assets) <> 0
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.asset_type, raw.assets, raw.reviewed, raw.approved, raw.scored, raw.review_score_sum
    from span
    cross join lateral ${analytics}.asset_buckets_all_brands(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.asset_buckets_all_brands(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.asset_buckets_all_brands(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.asset_buckets_all_brands(''microseconds'', span.core_end, span.range_end) as raw
';

create or replace function ${analytics}.workflow_daily_all_brands_between(
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
        select * from ${analytics}.workflow_stats_all_brands_between(since, until, slack)
    ),

    per_day as (
        select
            (stats.period_start at time zone ''${timezone}'')::date as day,
            sum(stats.runs) as workflow_count,
            coalesce(sum(stats.runs) filter (where stats.status = ''completed''), 0) as completed_count,
            coalesce(sum(stats.runs) filter (where stats.status = ''failed''), 0) as failed_count
        from stats
        cross join span
        where stats.period_start >= span.core_start and stats.period_start < span.core_end
        group by 1
    ),

    edges as (
        select
            stats.period_start as day,
            null::bigint as brand_id,
            null::text as brand_name,
            sum(stats.runs)::bigint as workflow_count,
            coalesce(sum(stats.runs) filter (where stats.status = ''completed''), 0)::bigint as completed_count,
            coalesce(sum(stats.runs) filter (where stats.status = ''failed''), 0)::bigint as failed_count
        from stats
        cross join span
        where stats.period_start < span.core_start or stats.period_start >= span.core_end
        group by 1
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
        null::bigint,
        null::text,
        coalesce(per_day.workflow_count, 0)::bigint,
        coalesce(per_day.completed_count, 0)::bigint,
        coalesce(per_day.failed_count, 0)::bigint
    from calendar
    cross join span
    left join per_day on calendar.day = per_day.day
    union all
    select * from edges
';
