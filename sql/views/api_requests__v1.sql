-- view: api_requests
-- grain: one row per minute, route template, method and status code: the sums over every process
--        of Sparklio's service that wrote it (service_request_minutes' writers), for the minutes
--        within the retention (service_metrics_retention)
-- buckets: le_<s> counts the requests that took at most <s> seconds (cumulative, as Prometheus's
--          `le`); requests is the +Inf bucket. Mean active requests over a minute: seconds_sum / 60
-- columns:
--   minute_start  timestamptz       the minute the requests finished in (time column)
--   route         text              the route template (/projects/{id}); <unmatched> for every path no route matched
--   http_method   text              GET, POST, ... (OTHER for any other)
--   status_code   smallint          the status answered (499: the client left first)
--   status_class  text              2xx, 3xx, 4xx or 5xx
--   requests      bigint            requests answered
--   seconds_sum   double precision  their durations added up, in seconds
--   le_0_005      bigint            of them, those that took at most 0.005 s
--   le_0_01       bigint            at most 0.01 s
--   le_0_025      bigint            at most 0.025 s
--   le_0_05       bigint            at most 0.05 s
--   le_0_075      bigint            at most 0.075 s
--   le_0_1        bigint            at most 0.1 s
--   le_0_25       bigint            at most 0.25 s
--   le_0_5        bigint            at most 0.5 s
--   le_0_75       bigint            at most 0.75 s
--   le_1          bigint            at most 1 s
--   le_2_5        bigint            at most 2.5 s
--   le_5          bigint            at most 5 s
--   le_7_5        bigint            at most 7.5 s
--   le_10         bigint            at most 10 s
--   writers       bigint            processes whose rows were added up

with retention as (
    select now() - make_interval(days => days) as since
    from ${analytics}.service_metrics_retention
),

kept as (
    select m.*
    from ${analytics}.service_request_minutes as m
    inner join retention on m.minute_start >= retention.since
),

final as (
    select
        minute_start,
        route,
        http_method,
        status_code,
        (status_code / 100)::text || 'xx' as status_class,
        sum(requests)::bigint as requests,
        sum(seconds_sum) as seconds_sum,
        sum(le_0_005)::bigint as le_0_005,
        sum(le_0_01)::bigint as le_0_01,
        sum(le_0_025)::bigint as le_0_025,
        sum(le_0_05)::bigint as le_0_05,
        sum(le_0_075)::bigint as le_0_075,
        sum(le_0_1)::bigint as le_0_1,
        sum(le_0_25)::bigint as le_0_25,
        sum(le_0_5)::bigint as le_0_5,
        sum(le_0_75)::bigint as le_0_75,
        sum(le_1)::bigint as le_1,
        sum(le_2_5)::bigint as le_2_5,
        sum(le_5)::bigint as le_5,
        sum(le_7_5)::bigint as le_7_5,
        sum(le_10)::bigint as le_10,
        count(*) as writers
    from kept
    group by minute_start, route, http_method, status_code
)

select * from final
