-- table: service_request_quarters (owned by the bundle; kept by triggers on service_request_minutes,
--        in the same transaction as the rows they add up, never written by hand)
-- grain: one row per quarter hour (on the quarter hours of UTC, which are quarter hours in every
--        time zone), route template, method and status code: the sums of its minutes over every
--        writer, with the first and the last minute that had a request
-- why: the API Performance dashboard reads any range: its whole quarter hours from here (at 90 days
--      about 15 times fewer rows than the minutes) and its minutes at the ends from
--      service_request_minutes (api_request_stats v1). Quarter hours, not hours: a time zone may
--      be half or three quarters of an hour off UTC, and a quarter hour lies within one of its hours
-- kept: an insert adds its rows' sums (insert ... on conflict do update: two writers add up, and a
--       batch the sink retries adds nothing, since on conflict do nothing left its rows out of the
--       transition table); a delete (the retention's prune) recomputes the quarter hours it
--       touched from the minutes left; a truncate empties it; an update is refused (the sink only
--       inserts, the prune only deletes)
-- table: service_request_routes: one row per route template and method the service has answered
--        (kept by the same insert trigger): the options of the dashboard's Route and Method filters

create table ${analytics}.service_request_quarters (
    quarter_start timestamptz not null,
    route         text not null,
    http_method   text not null,
    status_code   smallint not null,
    requests      bigint not null,
    seconds_sum   double precision not null,
    le_0_005      bigint not null,
    le_0_01       bigint not null,
    le_0_025      bigint not null,
    le_0_05       bigint not null,
    le_0_075      bigint not null,
    le_0_1        bigint not null,
    le_0_25       bigint not null,
    le_0_5        bigint not null,
    le_0_75       bigint not null,
    le_1          bigint not null,
    le_2_5        bigint not null,
    le_5          bigint not null,
    le_7_5        bigint not null,
    le_10         bigint not null,
    first_minute  timestamptz not null,
    last_minute   timestamptz not null,
    primary key (quarter_start, route, http_method, status_code)
);

create table ${analytics}.service_request_routes (
    route        text not null,
    http_method  text not null,
    first_minute timestamptz not null,
    primary key (route, http_method)
);

-- the quarter hour a minute is in (date_bin on the epoch: the same in every session time zone)
create function ${analytics}.service_quarter(minute_start timestamptz)
returns timestamptz
language sql immutable parallel safe
set search_path = pg_catalog
as 'select date_bin(interval ''15 minutes'', minute_start, timestamptz ''1970-01-01 00:00:00+00'')';

create function ${analytics}.service_minutes_added()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog
as '
begin
    -- in key order: two writers adding to the same quarter hours lock them in the same order
    insert into ${analytics}.service_request_quarters as q
    select
        ${analytics}.service_quarter(a.minute_start), a.route, a.http_method, a.status_code,
        sum(a.requests), sum(a.seconds_sum), sum(a.le_0_005), sum(a.le_0_01), sum(a.le_0_025), sum(a.le_0_05),
        sum(a.le_0_075), sum(a.le_0_1), sum(a.le_0_25), sum(a.le_0_5), sum(a.le_0_75), sum(a.le_1),
        sum(a.le_2_5), sum(a.le_5), sum(a.le_7_5), sum(a.le_10), min(a.minute_start), max(a.minute_start)
    from added as a
    group by 1, 2, 3, 4
    order by 1, 2, 3, 4
    on conflict (quarter_start, route, http_method, status_code) do update set
        requests = q.requests + excluded.requests,
        seconds_sum = q.seconds_sum + excluded.seconds_sum,
        le_0_005 = q.le_0_005 + excluded.le_0_005,
        le_0_01 = q.le_0_01 + excluded.le_0_01,
        le_0_025 = q.le_0_025 + excluded.le_0_025,
        le_0_05 = q.le_0_05 + excluded.le_0_05,
        le_0_075 = q.le_0_075 + excluded.le_0_075,
        le_0_1 = q.le_0_1 + excluded.le_0_1,
        le_0_25 = q.le_0_25 + excluded.le_0_25,
        le_0_5 = q.le_0_5 + excluded.le_0_5,
        le_0_75 = q.le_0_75 + excluded.le_0_75,
        le_1 = q.le_1 + excluded.le_1,
        le_2_5 = q.le_2_5 + excluded.le_2_5,
        le_5 = q.le_5 + excluded.le_5,
        le_7_5 = q.le_7_5 + excluded.le_7_5,
        le_10 = q.le_10 + excluded.le_10,
        first_minute = least(q.first_minute, excluded.first_minute),
        last_minute = greatest(q.last_minute, excluded.last_minute);
    insert into ${analytics}.service_request_routes as r
    select a.route, a.http_method, min(a.minute_start)
    from added as a
    group by 1, 2
    order by 1, 2
    on conflict (route, http_method) do update set first_minute = least(r.first_minute, excluded.first_minute);
    return null;
end
';

-- the quarter hours of the deleted rows (the retention's prune), recomputed from the minutes left
create function ${analytics}.service_minutes_removed()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog
as '
begin
    insert into ${analytics}.service_request_quarters as q
    select
        t.quarter_start, t.route, t.http_method, t.status_code,
        sum(m.requests), sum(m.seconds_sum), sum(m.le_0_005), sum(m.le_0_01), sum(m.le_0_025), sum(m.le_0_05),
        sum(m.le_0_075), sum(m.le_0_1), sum(m.le_0_25), sum(m.le_0_5), sum(m.le_0_75), sum(m.le_1),
        sum(m.le_2_5), sum(m.le_5), sum(m.le_7_5), sum(m.le_10), min(m.minute_start), max(m.minute_start)
    from (
        select distinct ${analytics}.service_quarter(o.minute_start) as quarter_start, o.route, o.http_method,
            o.status_code
        from removed as o
    ) as t
    inner join ${analytics}.service_request_minutes as m
        on m.minute_start >= t.quarter_start and m.minute_start < t.quarter_start + interval ''15 minutes''
        and m.route = t.route and m.http_method = t.http_method and m.status_code = t.status_code
    group by 1, 2, 3, 4
    order by 1, 2, 3, 4
    on conflict (quarter_start, route, http_method, status_code) do update set
        requests = excluded.requests, seconds_sum = excluded.seconds_sum, le_0_005 = excluded.le_0_005,
        le_0_01 = excluded.le_0_01, le_0_025 = excluded.le_0_025, le_0_05 = excluded.le_0_05,
        le_0_075 = excluded.le_0_075, le_0_1 = excluded.le_0_1, le_0_25 = excluded.le_0_25,
        le_0_5 = excluded.le_0_5, le_0_75 = excluded.le_0_75, le_1 = excluded.le_1, le_2_5 = excluded.le_2_5,
        le_5 = excluded.le_5, le_7_5 = excluded.le_7_5, le_10 = excluded.le_10,
        first_minute = excluded.first_minute, last_minute = excluded.last_minute;
    delete from ${analytics}.service_request_quarters as q
    using (select distinct o.minute_start, o.route, o.http_method, o.status_code from removed as o) as t
    where q.quarter_start = ${analytics}.service_quarter(t.minute_start) and q.route = t.route
        and q.http_method = t.http_method and q.status_code = t.status_code
        and not exists (
            select from ${analytics}.service_request_minutes as m
            where m.minute_start >= q.quarter_start and m.minute_start < q.quarter_start + interval ''15 minutes''
                and m.route = q.route and m.http_method = q.http_method and m.status_code = q.status_code
        );
    return null;
end
';

-- the sink only inserts, the prune only deletes: an update would need both, so there is none
create function ${analytics}.service_minutes_unchanged()
returns trigger
language plpgsql
set search_path = pg_catalog
as '
begin
    raise exception ''${analytics}.service_request_minutes is insert-only: delete the rows and insert them again''
        using errcode = ''feature_not_supported'';
end
';

create function ${analytics}.service_minutes_truncated()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog
as '
begin
    truncate ${analytics}.service_request_quarters, ${analytics}.service_request_routes;
    return null;
end
';

create trigger service_minutes_added
after insert on ${analytics}.service_request_minutes
referencing new table as added
for each statement execute function ${analytics}.service_minutes_added();

create trigger service_minutes_removed
after delete on ${analytics}.service_request_minutes
referencing old table as removed
for each statement execute function ${analytics}.service_minutes_removed();

create trigger service_minutes_unchanged
before update on ${analytics}.service_request_minutes
for each statement execute function ${analytics}.service_minutes_unchanged();

create trigger service_minutes_truncated
after truncate on ${analytics}.service_request_minutes
for each statement execute function ${analytics}.service_minutes_truncated();

-- what the tables held before these triggers (rows the sink wrote since 0020)
insert into ${analytics}.service_request_quarters
select
    ${analytics}.service_quarter(minute_start) as quarter_start,
    route,
    http_method,
    status_code,
    sum(requests) as requests,
    sum(seconds_sum) as seconds_sum,
    sum(le_0_005) as le_0_005,
    sum(le_0_01) as le_0_01,
    sum(le_0_025) as le_0_025,
    sum(le_0_05) as le_0_05,
    sum(le_0_075) as le_0_075,
    sum(le_0_1) as le_0_1,
    sum(le_0_25) as le_0_25,
    sum(le_0_5) as le_0_5,
    sum(le_0_75) as le_0_75,
    sum(le_1) as le_1,
    sum(le_2_5) as le_2_5,
    sum(le_5) as le_5,
    sum(le_7_5) as le_7_5,
    sum(le_10) as le_10,
    min(minute_start) as first_minute,
    max(minute_start) as last_minute
from ${analytics}.service_request_minutes
group by 1, 2, 3, 4;

insert into ${analytics}.service_request_routes
select
    route,
    http_method,
    min(minute_start) as first_minute
from ${analytics}.service_request_minutes
group by 1, 2;
