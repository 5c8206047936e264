-- functions, one set per rollup <name> (agent, error, router, workflow, asset):
--   <name>_buckets(period, since, until): the rollup's rows for the raw rows created in
--     [since, until), per period ('hour', or 'microseconds': each row's own time; in
--     SPARKLIO_TIMEZONE); fills <name>_hours; PL/pgSQL, so each call is planned with its own
--     bounds, with random_page_cost 1.1 (the few thousand rows at a range's ends: index lookups
--     of their brands, not a hash of every project; millions in a full build: hash joins)
--   <name>_days(since, until): whole days' rows of <name>_rollup, added up from <name>_hours
--   <name>_month_totals(since, until): whole months' rows of <name>_months, added up from
--     <name>_rollup
--   <name>_stats_between(since, until, slack, whole_months): the rollup's rows for exactly the
--     rows created in [since, until) (null: unbounded), every row's period_start inside the
--     range: whole days from <name>_rollup (with whole_months, whole months from <name>_months,
--     labelled with their first day: for totals over the range, not for a series by day), hours
--     from <name>_hours, and the rest of each end from the raw view, whichever reads fewer rows:
--     the seconds up to the next whole hour added, or the seconds since the last whole hour taken
--     off that hour's row (or that day's or month's, at a midnight); the rows after the watermark
--     from the raw view; with a slack, the raw rows within it of either end come at their exact
--     created_at, so a filter on period_start whose ends are up to that far from since and until
--     cuts them exactly (Superset computes "now" twice per query: the bounds its dataset SQL
--     gets and those of its own filter can differ by a second)
-- and rollup_span(rollup, since, until, slack, whole_months), the cut of a range into those
-- parts (PL/pgSQL: computed once per call, planned in microseconds); and
-- workflow_daily_between(since, until), chart 1.1's calendar of days for a range
-- v3: an end is taken off a whole hour's (or day's, or month's) row when that reads fewer raw
--     rows: a range starting at a midnight or on the hour reads a minute of raw rows (the slack)
--     instead of an hour, and one ending now (just before the watermark) a minute instead of up
--     to an hour; whole months; rollup_span names the rows so cut (first_month, first_day,
--     first_hour, last_month, last_day, last_hour); a sum left at 0 by taking rows off is null
--     when no row with a value is left (the count of values beside it is 0), as the raw view's is
-- why: at 10M executions the raw rows cost about 5-10 microseconds each (their brands are looked
--      up), about 60 ms per hour of executions; a day or a month costs about 4,000 rows (keys)
-- bodies are quoted strings (the file is a string.Template: dollar quotes are not available), so
-- the functions do not pin the views and tables they read

create or replace function ${analytics}.rollup_span(
    rollup text, since timestamptz, until timestamptz, slack interval default interval '0',
    whole_months boolean default false
)
returns table (
    range_start timestamptz, core_start timestamptz, hours_from timestamptz, days_from timestamptz,
    months_from timestamptz, months_until timestamptz, days_until timestamptz, hours_until timestamptz,
    core_end timestamptz, range_end timestamptz, first_month timestamptz, first_day timestamptz,
    first_hour timestamptz, last_month timestamptz, last_day timestamptz, last_hour timestamptz
)
language plpgsql stable
rows 1
as '
declare
    watermark timestamptz;
    start_floor timestamptz;
    end_floor timestamptz;
    start_cut boolean := false;
    end_cut boolean := false;
    next_hour timestamptz;
    inner_from timestamptz;
    inner_until timestamptz;
begin
    select state.watermark into watermark from ${analytics}.rollup_state as state
    where state.rollup = rollup_span.rollup;
    watermark := coalesce(watermark, ''-infinity'');
    range_start := coalesce(since, ''-infinity'') - slack;
    core_start := coalesce(since, ''-infinity'') + slack;
    range_end := greatest(coalesce(until, ''infinity''), coalesce(since, ''-infinity'')) + slack;
    core_end := greatest(coalesce(until, ''infinity'') - slack, core_start);
    start_floor := date_trunc(''hour'', core_start, ''${timezone}'');
    end_floor := date_trunc(''hour'', core_end, ''${timezone}'');
    -- the start: up to the next whole hour from the raw view, or that hour minus the raw rows before
    if core_start > start_floor and start_floor + interval ''1 hour'' <= least(core_end, watermark) then
        start_cut := core_start - start_floor < start_floor + interval ''1 hour'' - core_start;
    end if;
    if start_cut then
        hours_from := start_floor;
    elsif start_floor = core_start then
        hours_from := core_start;
    else
        hours_from := least(start_floor + interval ''1 hour'', core_end);
    end if;
    -- the end: from the last whole hour (or the watermark) on from the raw view, or the hour it is
    -- in minus the raw rows after it
    if watermark > core_end and core_end > end_floor and end_floor >= hours_from then
        next_hour := least(watermark, end_floor + interval ''1 hour'');
        end_cut := next_hour - core_end < core_end - end_floor;
    end if;
    if end_cut then
        hours_until := next_hour;
    elsif watermark <= core_end then
        hours_until := greatest(watermark, hours_from);
    else
        hours_until := greatest(end_floor, hours_from);
    end if;
    if date_trunc(''day'', hours_from, ''${timezone}'') = hours_from then
        days_from := least(hours_from, hours_until);
    else
        days_from := least(
            (date_trunc(''day'', hours_from at time zone ''${timezone}'') + interval ''1 day'') at time zone ''${timezone}'',
            hours_until
        );
    end if;
    days_until := greatest(date_trunc(''day'', hours_until, ''${timezone}''), days_from);
    -- the rows an end is taken off: a whole day in the days, else an hour
    if start_cut and days_from = hours_from and days_from < days_until then
        first_day := hours_from;
    elsif start_cut then
        first_hour := hours_from;
    end if;
    if end_cut and days_until = hours_until and days_until > days_from then
        last_day := date_trunc(''day'', hours_until - interval ''1 microsecond'', ''${timezone}'');
    elsif end_cut then
        last_hour := end_floor;
    end if;
    -- whole months inside the days; a day an end is taken off is taken off its month instead
    -- when that month lies inside the days
    months_from := days_until;
    months_until := days_until;
    if whole_months then
        inner_from := days_from;
        if first_day is not null and date_trunc(''month'', first_day, ''${timezone}'') = first_day
            and (first_day at time zone ''${timezone}'' + interval ''1 month'') at time zone ''${timezone}''
                <= days_until then
            first_month := first_day;
            first_day := null;
        elsif first_day is not null then
            inner_from := (date_trunc(''day'', days_from at time zone ''${timezone}'') + interval ''1 day'')
                at time zone ''${timezone}'';
        end if;
        if date_trunc(''month'', inner_from, ''${timezone}'') <> inner_from then
            inner_from := (date_trunc(''month'', inner_from at time zone ''${timezone}'') + interval ''1 month'')
                at time zone ''${timezone}'';
        end if;
        inner_until := days_until;
        if last_day is not null and date_trunc(''month'', days_until, ''${timezone}'') = days_until
            and date_trunc(''month'', last_day, ''${timezone}'') >= inner_from then
            last_month := date_trunc(''month'', last_day, ''${timezone}'');
            last_day := null;
        elsif last_day is not null then
            inner_until := last_day;
        end if;
        inner_until := date_trunc(''month'', inner_until, ''${timezone}'');
        if inner_from < inner_until then
            months_from := inner_from;
            months_until := inner_until;
        else
            first_day := coalesce(first_day, first_month);
            first_month := null;
            last_day := coalesce(last_day, last_month);
            last_month := null;
        end if;
    end if;
    return next;
end
';

create or replace function ${analytics}.agent_buckets(period text, since timestamptz, until timestamptz)
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
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, agent_name, model,
        count(*), sum(is_success), sum(latency_ms)
    from ${analytics}.agent_logs
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4, 5;
end
';

create or replace function ${analytics}.agent_days(since timestamptz, until timestamptz)
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

create or replace function ${analytics}.agent_month_totals(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    executions bigint, successes bigint, latency_ms_sum bigint
)
language sql stable
as '
    select
        date_trunc(''month'', period_start, ''${timezone}''), brand_id, brand_name, agent_name, model,
        sum(executions)::bigint, sum(successes)::bigint, sum(latency_ms_sum)::bigint
    from ${analytics}.agent_rollup
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4, 5
';

create or replace function ${analytics}.agent_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0',
    whole_months boolean default false
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    executions bigint, successes bigint, latency_ms_sum bigint
)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.rollup_span(''agent'', since, until, slack, whole_months)
    )

    select months.* from span
    inner join ${analytics}.agent_months as months
        on months.period_start >= span.months_from and months.period_start < span.months_until
    where months.period_start is distinct from span.first_month and months.period_start is distinct from span.last_month
    union all
    select days.* from span
    inner join ${analytics}.agent_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.months_from
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select days.* from span
    inner join ${analytics}.agent_rollup as days
        on days.period_start >= span.months_until and days.period_start < span.days_until
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select hours.* from span
    inner join ${analytics}.agent_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select hours.* from span
    inner join ${analytics}.agent_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select cut.period_start, cut.brand_id, cut.brand_name, cut.agent_name, cut.model, sum(cut.executions)::bigint, sum(cut.successes)::bigint, sum(cut.latency_ms_sum)::bigint
    from (
        select greatest(months.period_start, span.core_start) as period_start, months.brand_id, months.brand_name, months.agent_name, months.model, months.executions, months.successes, months.latency_ms_sum
        from span
        inner join ${analytics}.agent_months as months
            on months.period_start = span.first_month or months.period_start = span.last_month
        union all
        select greatest(days.period_start, span.core_start), days.brand_id, days.brand_name, days.agent_name, days.model, days.executions, days.successes, days.latency_ms_sum
        from span
        inner join ${analytics}.agent_rollup as days
            on days.period_start = span.first_day or days.period_start = span.last_day
        union all
        select greatest(hours.period_start, span.core_start), hours.brand_id, hours.brand_name, hours.agent_name, hours.model, hours.executions, hours.successes, hours.latency_ms_sum
        from span
        inner join ${analytics}.agent_hours as hours
            on hours.period_start = span.first_hour or hours.period_start = span.last_hour
        union all
        select greatest(span.hours_from, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, -raw.executions, -raw.successes, -raw.latency_ms_sum
        from span
        cross join lateral ${analytics}.agent_buckets(''hour'', span.hours_from, span.core_start) as raw
        union all
        select greatest(coalesce(span.last_month, span.last_day, span.last_hour), span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, -raw.executions, -raw.successes, -raw.latency_ms_sum
        from span
        cross join lateral ${analytics}.agent_buckets(''hour'', span.core_end, span.hours_until) as raw
    ) as cut
    group by cut.period_start, cut.brand_id, cut.brand_name, cut.agent_name, cut.model
    having sum(cut.executions) <> 0
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.executions, raw.successes, raw.latency_ms_sum
    from span
    cross join lateral ${analytics}.agent_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.agent_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.agent_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.agent_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create or replace function ${analytics}.error_buckets(period text, since timestamptz, until timestamptz)
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
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, agent_name, model, error_type,
        count(*), sum(1 - is_recovered), sum(is_recovered), sum(recovery_seconds)
    from ${analytics}.errors
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4, 5, 6;
end
';

create or replace function ${analytics}.error_days(since timestamptz, until timestamptz)
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

create or replace function ${analytics}.error_month_totals(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    error_type text, failures bigint, still_failing bigint, recovered bigint,
    recovery_seconds_sum double precision
)
language sql stable
as '
    select
        date_trunc(''month'', period_start, ''${timezone}''), brand_id, brand_name, agent_name, model, error_type,
        sum(failures)::bigint, sum(still_failing)::bigint, sum(recovered)::bigint, sum(recovery_seconds_sum)
    from ${analytics}.error_rollup
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4, 5, 6
';

create or replace function ${analytics}.error_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0',
    whole_months boolean default false
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, agent_name text, model text,
    error_type text, failures bigint, still_failing bigint, recovered bigint,
    recovery_seconds_sum double precision
)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.rollup_span(''error'', since, until, slack, whole_months)
    )

    select months.* from span
    inner join ${analytics}.error_months as months
        on months.period_start >= span.months_from and months.period_start < span.months_until
    where months.period_start is distinct from span.first_month and months.period_start is distinct from span.last_month
    union all
    select days.* from span
    inner join ${analytics}.error_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.months_from
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select days.* from span
    inner join ${analytics}.error_rollup as days
        on days.period_start >= span.months_until and days.period_start < span.days_until
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select hours.* from span
    inner join ${analytics}.error_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select hours.* from span
    inner join ${analytics}.error_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select cut.period_start, cut.brand_id, cut.brand_name, cut.agent_name, cut.model, cut.error_type, sum(cut.failures)::bigint, sum(cut.still_failing)::bigint, sum(cut.recovered)::bigint, case when sum(cut.recovered) <> 0 then sum(cut.recovery_seconds_sum) end
    from (
        select greatest(months.period_start, span.core_start) as period_start, months.brand_id, months.brand_name, months.agent_name, months.model, months.error_type, months.failures, months.still_failing, months.recovered, months.recovery_seconds_sum
        from span
        inner join ${analytics}.error_months as months
            on months.period_start = span.first_month or months.period_start = span.last_month
        union all
        select greatest(days.period_start, span.core_start), days.brand_id, days.brand_name, days.agent_name, days.model, days.error_type, days.failures, days.still_failing, days.recovered, days.recovery_seconds_sum
        from span
        inner join ${analytics}.error_rollup as days
            on days.period_start = span.first_day or days.period_start = span.last_day
        union all
        select greatest(hours.period_start, span.core_start), hours.brand_id, hours.brand_name, hours.agent_name, hours.model, hours.error_type, hours.failures, hours.still_failing, hours.recovered, hours.recovery_seconds_sum
        from span
        inner join ${analytics}.error_hours as hours
            on hours.period_start = span.first_hour or hours.period_start = span.last_hour
        union all
        select greatest(span.hours_from, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.error_type, -raw.failures, -raw.still_failing, -raw.recovered, -raw.recovery_seconds_sum
        from span
        cross join lateral ${analytics}.error_buckets(''hour'', span.hours_from, span.core_start) as raw
        union all
        select greatest(coalesce(span.last_month, span.last_day, span.last_hour), span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.error_type, -raw.failures, -raw.still_failing, -raw.recovered, -raw.recovery_seconds_sum
        from span
        cross join lateral ${analytics}.error_buckets(''hour'', span.core_end, span.hours_until) as raw
    ) as cut
    group by cut.period_start, cut.brand_id, cut.brand_name, cut.agent_name, cut.model, cut.error_type
    having sum(cut.failures) <> 0
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.agent_name, raw.model, raw.error_type, raw.failures, raw.still_failing, raw.recovered, raw.recovery_seconds_sum
    from span
    cross join lateral ${analytics}.error_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.error_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.error_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.error_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create or replace function ${analytics}.router_buckets(period text, since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, intent_type text, selected_model text, risk_level text,
    decisions bigint, context_before_sum bigint, context_after_sum bigint
)
language plpgsql stable
set random_page_cost = 1.1
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

create or replace function ${analytics}.router_days(since timestamptz, until timestamptz)
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

create or replace function ${analytics}.router_month_totals(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, intent_type text, selected_model text, risk_level text,
    decisions bigint, context_before_sum bigint, context_after_sum bigint
)
language sql stable
as '
    select
        date_trunc(''month'', period_start, ''${timezone}''), intent_type, selected_model, risk_level,
        sum(decisions)::bigint, sum(context_before_sum)::bigint, sum(context_after_sum)::bigint
    from ${analytics}.router_rollup
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4
';

create or replace function ${analytics}.router_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0',
    whole_months boolean default false
)
returns table (
    period_start timestamptz, intent_type text, selected_model text, risk_level text,
    decisions bigint, context_before_sum bigint, context_after_sum bigint
)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.rollup_span(''router'', since, until, slack, whole_months)
    )

    select months.* from span
    inner join ${analytics}.router_months as months
        on months.period_start >= span.months_from and months.period_start < span.months_until
    where months.period_start is distinct from span.first_month and months.period_start is distinct from span.last_month
    union all
    select days.* from span
    inner join ${analytics}.router_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.months_from
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select days.* from span
    inner join ${analytics}.router_rollup as days
        on days.period_start >= span.months_until and days.period_start < span.days_until
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select hours.* from span
    inner join ${analytics}.router_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select hours.* from span
    inner join ${analytics}.router_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select cut.period_start, cut.intent_type, cut.selected_model, cut.risk_level, sum(cut.decisions)::bigint, sum(cut.context_before_sum)::bigint, sum(cut.context_after_sum)::bigint
    from (
        select greatest(months.period_start, span.core_start) as period_start, months.intent_type, months.selected_model, months.risk_level, months.decisions, months.context_before_sum, months.context_after_sum
        from span
        inner join ${analytics}.router_months as months
            on months.period_start = span.first_month or months.period_start = span.last_month
        union all
        select greatest(days.period_start, span.core_start), days.intent_type, days.selected_model, days.risk_level, days.decisions, days.context_before_sum, days.context_after_sum
        from span
        inner join ${analytics}.router_rollup as days
            on days.period_start = span.first_day or days.period_start = span.last_day
        union all
        select greatest(hours.period_start, span.core_start), hours.intent_type, hours.selected_model, hours.risk_level, hours.decisions, hours.context_before_sum, hours.context_after_sum
        from span
        inner join ${analytics}.router_hours as hours
            on hours.period_start = span.first_hour or hours.period_start = span.last_hour
        union all
        select greatest(span.hours_from, span.core_start), raw.intent_type, raw.selected_model, raw.risk_level, -raw.decisions, -raw.context_before_sum, -raw.context_after_sum
        from span
        cross join lateral ${analytics}.router_buckets(''hour'', span.hours_from, span.core_start) as raw
        union all
        select greatest(coalesce(span.last_month, span.last_day, span.last_hour), span.core_start), raw.intent_type, raw.selected_model, raw.risk_level, -raw.decisions, -raw.context_before_sum, -raw.context_after_sum
        from span
        cross join lateral ${analytics}.router_buckets(''hour'', span.core_end, span.hours_until) as raw
    ) as cut
    group by cut.period_start, cut.intent_type, cut.selected_model, cut.risk_level
    having sum(cut.decisions) <> 0
    union all
    select greatest(raw.period_start, span.core_start), raw.intent_type, raw.selected_model, raw.risk_level, raw.decisions, raw.context_before_sum, raw.context_after_sum
    from span
    cross join lateral ${analytics}.router_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.router_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.router_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.router_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create or replace function ${analytics}.workflow_buckets(period text, since timestamptz, until timestamptz)
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
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, status,
        count(*), count(duration_seconds), sum(duration_seconds)
    from ${analytics}.workflows
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4;
end
';

create or replace function ${analytics}.workflow_days(since timestamptz, until timestamptz)
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

create or replace function ${analytics}.workflow_month_totals(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, status text, runs bigint,
    durations bigint, duration_seconds_sum double precision
)
language sql stable
as '
    select
        date_trunc(''month'', period_start, ''${timezone}''), brand_id, brand_name, status,
        sum(runs)::bigint, sum(durations)::bigint, sum(duration_seconds_sum)
    from ${analytics}.workflow_rollup
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4
';

create or replace function ${analytics}.workflow_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0',
    whole_months boolean default false
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, status text, runs bigint,
    durations bigint, duration_seconds_sum double precision
)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.rollup_span(''workflow'', since, until, slack, whole_months)
    )

    select months.* from span
    inner join ${analytics}.workflow_months as months
        on months.period_start >= span.months_from and months.period_start < span.months_until
    where months.period_start is distinct from span.first_month and months.period_start is distinct from span.last_month
    union all
    select days.* from span
    inner join ${analytics}.workflow_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.months_from
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select days.* from span
    inner join ${analytics}.workflow_rollup as days
        on days.period_start >= span.months_until and days.period_start < span.days_until
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select hours.* from span
    inner join ${analytics}.workflow_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select hours.* from span
    inner join ${analytics}.workflow_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select cut.period_start, cut.brand_id, cut.brand_name, cut.status, sum(cut.runs)::bigint, sum(cut.durations)::bigint, case when sum(cut.durations) <> 0 then sum(cut.duration_seconds_sum) end
    from (
        select greatest(months.period_start, span.core_start) as period_start, months.brand_id, months.brand_name, months.status, months.runs, months.durations, months.duration_seconds_sum
        from span
        inner join ${analytics}.workflow_months as months
            on months.period_start = span.first_month or months.period_start = span.last_month
        union all
        select greatest(days.period_start, span.core_start), days.brand_id, days.brand_name, days.status, days.runs, days.durations, days.duration_seconds_sum
        from span
        inner join ${analytics}.workflow_rollup as days
            on days.period_start = span.first_day or days.period_start = span.last_day
        union all
        select greatest(hours.period_start, span.core_start), hours.brand_id, hours.brand_name, hours.status, hours.runs, hours.durations, hours.duration_seconds_sum
        from span
        inner join ${analytics}.workflow_hours as hours
            on hours.period_start = span.first_hour or hours.period_start = span.last_hour
        union all
        select greatest(span.hours_from, span.core_start), raw.brand_id, raw.brand_name, raw.status, -raw.runs, -raw.durations, -raw.duration_seconds_sum
        from span
        cross join lateral ${analytics}.workflow_buckets(''hour'', span.hours_from, span.core_start) as raw
        union all
        select greatest(coalesce(span.last_month, span.last_day, span.last_hour), span.core_start), raw.brand_id, raw.brand_name, raw.status, -raw.runs, -raw.durations, -raw.duration_seconds_sum
        from span
        cross join lateral ${analytics}.workflow_buckets(''hour'', span.core_end, span.hours_until) as raw
    ) as cut
    group by cut.period_start, cut.brand_id, cut.brand_name, cut.status
    having sum(cut.runs) <> 0
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.status, raw.runs, raw.durations, raw.duration_seconds_sum
    from span
    cross join lateral ${analytics}.workflow_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.workflow_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.workflow_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.workflow_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create or replace function ${analytics}.asset_buckets(period text, since timestamptz, until timestamptz)
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
        date_trunc(period, created_at, ''${timezone}''), brand_id, brand_name, asset_type,
        count(*), sum(is_reviewed), sum(is_approved), count(review_score), sum(review_score)
    from ${analytics}.assets
    where created_at >= since and created_at < until
    group by 1, 2, 3, 4;
end
';

create or replace function ${analytics}.asset_days(since timestamptz, until timestamptz)
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

create or replace function ${analytics}.asset_month_totals(since timestamptz, until timestamptz)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, asset_type text, assets bigint,
    reviewed bigint, approved bigint, scored bigint, review_score_sum numeric
)
language sql stable
as '
    select
        date_trunc(''month'', period_start, ''${timezone}''), brand_id, brand_name, asset_type,
        sum(assets)::bigint, sum(reviewed)::bigint, sum(approved)::bigint, sum(scored)::bigint, sum(review_score_sum)
    from ${analytics}.asset_rollup
    where period_start >= since and period_start < until
    group by 1, 2, 3, 4
';

create or replace function ${analytics}.asset_stats_between(
    since timestamptz, until timestamptz, slack interval default interval '0',
    whole_months boolean default false
)
returns table (
    period_start timestamptz, brand_id bigint, brand_name text, asset_type text, assets bigint,
    reviewed bigint, approved bigint, scored bigint, review_score_sum numeric
)
language sql stable
as '
    with span as materialized (
        select * from ${analytics}.rollup_span(''asset'', since, until, slack, whole_months)
    )

    select months.* from span
    inner join ${analytics}.asset_months as months
        on months.period_start >= span.months_from and months.period_start < span.months_until
    where months.period_start is distinct from span.first_month and months.period_start is distinct from span.last_month
    union all
    select days.* from span
    inner join ${analytics}.asset_rollup as days
        on days.period_start >= span.days_from and days.period_start < span.months_from
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select days.* from span
    inner join ${analytics}.asset_rollup as days
        on days.period_start >= span.months_until and days.period_start < span.days_until
    where days.period_start is distinct from span.first_day and days.period_start is distinct from span.last_day
    union all
    select hours.* from span
    inner join ${analytics}.asset_hours as hours
        on hours.period_start >= span.hours_from and hours.period_start < span.days_from
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select hours.* from span
    inner join ${analytics}.asset_hours as hours
        on hours.period_start >= span.days_until and hours.period_start < span.hours_until
    where hours.period_start is distinct from span.first_hour and hours.period_start is distinct from span.last_hour
    union all
    select cut.period_start, cut.brand_id, cut.brand_name, cut.asset_type, sum(cut.assets)::bigint, sum(cut.reviewed)::bigint, sum(cut.approved)::bigint, sum(cut.scored)::bigint, case when sum(cut.scored) <> 0 then sum(cut.review_score_sum) end
    from (
        select greatest(months.period_start, span.core_start) as period_start, months.brand_id, months.brand_name, months.asset_type, months.assets, months.reviewed, months.approved, months.scored, months.review_score_sum
        from span
        inner join ${analytics}.asset_months as months
            on months.period_start = span.first_month or months.period_start = span.last_month
        union all
        select greatest(days.period_start, span.core_start), days.brand_id, days.brand_name, days.asset_type, days.assets, days.reviewed, days.approved, days.scored, days.review_score_sum
        from span
        inner join ${analytics}.asset_rollup as days
            on days.period_start = span.first_day or days.period_start = span.last_day
        union all
        select greatest(hours.period_start, span.core_start), hours.brand_id, hours.brand_name, hours.asset_type, hours.assets, hours.reviewed, hours.approved, hours.scored, hours.review_score_sum
        from span
        inner join ${analytics}.asset_hours as hours
            on hours.period_start = span.first_hour or hours.period_start = span.last_hour
        union all
        select greatest(span.hours_from, span.core_start), raw.brand_id, raw.brand_name, raw.asset_type, -raw.assets, -raw.reviewed, -raw.approved, -raw.scored, -raw.review_score_sum
        from span
        cross join lateral ${analytics}.asset_buckets(''hour'', span.hours_from, span.core_start) as raw
        union all
        select greatest(coalesce(span.last_month, span.last_day, span.last_hour), span.core_start), raw.brand_id, raw.brand_name, raw.asset_type, -raw.assets, -raw.reviewed, -raw.approved, -raw.scored, -raw.review_score_sum
        from span
        cross join lateral ${analytics}.asset_buckets(''hour'', span.core_end, span.hours_until) as raw
    ) as cut
    group by cut.period_start, cut.brand_id, cut.brand_name, cut.asset_type
    having sum(cut.assets) <> 0
    union all
    select greatest(raw.period_start, span.core_start), raw.brand_id, raw.brand_name, raw.asset_type, raw.assets, raw.reviewed, raw.approved, raw.scored, raw.review_score_sum
    from span
    cross join lateral ${analytics}.asset_buckets(''hour'', span.core_start, span.hours_from) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.asset_buckets(''hour'', span.hours_until, span.core_end) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.asset_buckets(''microseconds'', span.range_start, span.core_start) as raw
    union all
    select raw.* from span
    cross join lateral ${analytics}.asset_buckets(''microseconds'', span.core_end, span.range_end) as raw
';

create or replace function ${analytics}.workflow_daily_between(
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

