-- view: service_metrics
-- grain: one row per minute, kind, name and labels: the figures of the guide's section 5 API
--        (record_metric, increment_counter, set_gauge, record_histogram) over every process of
--        Sparklio's service that wrote them (service_metric_minutes' writers), for the minutes within
--        the retention (service_metrics_retention)
-- kinds: metric, counter (values are the increments: value_sum is the minute's increase), gauge
--        (value_last: each process's last value added up, as prometheus-client's livesum), histogram
--        (le_<x>: the values at most <x>, cumulative; null for the other kinds)
-- columns:
--   minute_start  timestamptz       the minute the values were recorded in (time column)
--   kind          text              metric, counter, gauge or histogram
--   name          text              the metric's name
--   labels        jsonb             its labels ({} when none)
--   samples       bigint            calls recorded
--   value_sum     double precision  their values added up
--   value_min     double precision  the smallest value
--   value_max     double precision  the largest value
--   value_last    double precision  each process's last value of the minute, added up
--   le_0_005      bigint            values at most 0.005 (histograms)
--   le_0_01       bigint            at most 0.01
--   le_0_025      bigint            at most 0.025
--   le_0_05       bigint            at most 0.05
--   le_0_075      bigint            at most 0.075
--   le_0_1        bigint            at most 0.1
--   le_0_25       bigint            at most 0.25
--   le_0_5        bigint            at most 0.5
--   le_0_75       bigint            at most 0.75
--   le_1          bigint            at most 1
--   le_2_5        bigint            at most 2.5
--   le_5          bigint            at most 5
--   le_7_5        bigint            at most 7.5
--   le_10         bigint            at most 10
--   writers       bigint            processes whose rows were added up

with retention as (
    select now() - make_interval(days => days) as since
    from ${analytics}.service_metrics_retention
),

kept as (
    select m.*
    from ${analytics}.service_metric_minutes as m
    inner join retention on m.minute_start >= retention.since
),

final as (
    select
        minute_start,
        kind,
        name,
        labels,
        sum(samples)::bigint as samples,
        sum(value_sum) as value_sum,
        min(value_min) as value_min,
        max(value_max) as value_max,
        sum(value_last) as value_last,
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
    group by minute_start, kind, name, labels
)

select * from final
