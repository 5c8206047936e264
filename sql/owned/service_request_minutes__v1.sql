-- table: service_request_minutes (owned by the bundle; written by Sparklio's service through
--        sparklio_instrument.sink as sparklio_metrics_writer, which may only insert)
-- grain: one row per minute, route template, method, status code and writer (one process of the
--        service: host, pid and a uuid drawn at its start); the api_requests view adds up the writers
-- why: the monitoring guide's path without Prometheus. Each process adds up its requests in memory
--      and writes a minute once, when it is complete, in one batch: a retried batch hits the
--      primary key (insert ... on conflict do nothing) and counts nothing twice
-- buckets: le_<s> counts the requests that took at most <s> seconds (cumulative, as Prometheus's
--          `le`; Prometheus's default buckets, those of sparklio_http_request_duration_seconds),
--          requests is the +Inf bucket

create table ${analytics}.service_request_minutes (
    minute_start timestamptz not null,
    route        text not null,
    http_method  text not null,
    status_code  smallint not null,
    writer       text not null,
    requests     bigint not null check (requests > 0),
    seconds_sum  double precision not null,
    le_0_005     bigint not null,
    le_0_01      bigint not null,
    le_0_025     bigint not null,
    le_0_05      bigint not null,
    le_0_075     bigint not null,
    le_0_1       bigint not null,
    le_0_25      bigint not null,
    le_0_5       bigint not null,
    le_0_75      bigint not null,
    le_1         bigint not null,
    le_2_5       bigint not null,
    le_5         bigint not null,
    le_7_5       bigint not null,
    le_10        bigint not null,
    primary key (minute_start, route, http_method, status_code, writer)
);
