-- functions: <name>_buckets(period, since, until), one per rollup: the rollup's rows for the raw
--            rows created in [since, until), per period ('day' or 'hour', in SPARKLIO_TIMEZONE)
-- why: one definition of each aggregate, used both to fill the rollup tables (refresh) and to
--      aggregate the live rows after the watermark (the *_stats views)
-- bodies are quoted strings (the file is a string.Template: dollar quotes are not available), so
-- the functions do not pin the views they read: a view can get a new version without them

create function ${analytics}.agent_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    executions bigint, successes bigint, latency_ms_sum bigint
)
language sql stable
as '
    select
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, agent_name, model,
        count(*), sum(is_success), sum(latency_ms)
    from ${analytics}.agent_logs
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4, 5
';

create function ${analytics}.error_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    error_type text, failures bigint, still_failing bigint, recovered bigint,
    recovery_seconds_sum double precision
)
language sql stable
as '
    select
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, agent_name, model,
        error_type, count(*), sum(1 - is_recovered), sum(is_recovered), sum(recovery_seconds)
    from ${analytics}.errors
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4, 5, 6
';

create function ${analytics}.router_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, intent_type text, selected_model text, risk_level text,
    decisions bigint, context_before_sum bigint, context_after_sum bigint
)
language sql stable
as '
    select
        date_trunc(period, created_at, ''${timezone}''), intent_type, selected_model, risk_level,
        count(*), sum(context_size_before), sum(context_size_after)
    from ${analytics}.router_logs
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4
';

create function ${analytics}.workflow_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, status text,
    runs bigint, durations bigint, duration_seconds_sum double precision
)
language sql stable
as '
    select
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, status,
        count(*), count(duration_seconds), sum(duration_seconds)
    from ${analytics}.workflows
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4
';

create function ${analytics}.asset_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, asset_type text,
    assets bigint, reviewed bigint, approved bigint, scored bigint, review_score_sum numeric
)
language sql stable
as '
    select
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, asset_type,
        count(*), sum(is_reviewed), sum(is_approved), count(review_score), sum(review_score)
    from ${analytics}.assets
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4
';
