-- view: api_request_stats
-- grain: one row per period, route template, method and status code, at two grains side by side:
--        each minute (period_seconds 60: service_request_minutes, its writers added up) and each
--        quarter hour (period_seconds 900: service_request_quarters, the same minutes added up);
--        so every request is here twice: a query picks one grain for each part of its range. The
--        API Performance dataset (assets/datasets/Sparklio_Analytics/api_request_stats.yaml) reads
--        the whole quarter hours inside the chart's range at 900 and the minutes at its ends at 60:
--        exact for a range whose ends fall at any second, from few rows
-- buckets: le_<s> counts the requests that took at most <s> seconds (cumulative, as Prometheus's
--          `le`); requests is the +Inf bucket. histogram_quantile(q, array[sum(le_0_005), ...],
--          sum(requests)) is a quantile of any set of rows of one grain
-- columns:
--   period_start    timestamptz       the minute or quarter hour (time column)
--   period_seconds  integer           60 for a minute, 900 for a quarter hour
--   route           text              the route template (/projects/{id}); <unmatched> for every path no route matched
--   http_method     text              GET, POST, ... (OTHER for any other)
--   status_code     smallint          the status answered (499: the client left first)
--   status_class    text              2xx, 3xx, 4xx or 5xx
--   requests        bigint            requests answered
--   seconds_sum     double precision  their durations added up, in seconds
--   le_0_005        bigint            of them, those that took at most 0.005 s
--   le_0_01         bigint            at most 0.01 s
--   le_0_025        bigint            at most 0.025 s
--   le_0_05         bigint            at most 0.05 s
--   le_0_075        bigint            at most 0.075 s
--   le_0_1          bigint            at most 0.1 s
--   le_0_25         bigint            at most 0.25 s
--   le_0_5          bigint            at most 0.5 s
--   le_0_75         bigint            at most 0.75 s
--   le_1            bigint            at most 1 s
--   le_2_5          bigint            at most 2.5 s
--   le_5            bigint            at most 5 s
--   le_7_5          bigint            at most 7.5 s
--   le_10           bigint            at most 10 s
--   first_minute    timestamptz       the period's first minute with a request of this row
--   last_minute     timestamptz       its last minute with one

with minutes as (
    select
        minute_start as period_start,
        60 as period_seconds,
        route,
        http_method,
        status_code,
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
        minute_start as first_minute,
        minute_start as last_minute
    from ${analytics}.service_request_minutes
    group by minute_start, route, http_method, status_code
),

quarters as (
    select
        quarter_start as period_start,
        900 as period_seconds,
        route,
        http_method,
        status_code,
        requests,
        seconds_sum,
        le_0_005,
        le_0_01,
        le_0_025,
        le_0_05,
        le_0_075,
        le_0_1,
        le_0_25,
        le_0_5,
        le_0_75,
        le_1,
        le_2_5,
        le_5,
        le_7_5,
        le_10,
        first_minute,
        last_minute
    from ${analytics}.service_request_quarters
),

both_grains as (
    select * from minutes
    union all
    select * from quarters
),

final as (
    select
        period_start,
        period_seconds,
        route,
        http_method,
        status_code,
        (status_code / 100)::text || 'xx' as status_class,
        requests,
        seconds_sum,
        le_0_005,
        le_0_01,
        le_0_025,
        le_0_05,
        le_0_075,
        le_0_1,
        le_0_25,
        le_0_5,
        le_0_75,
        le_1,
        le_2_5,
        le_5,
        le_7_5,
        le_10,
        first_minute,
        last_minute
    from both_grains
)

select * from final
