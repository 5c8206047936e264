-- table: service_metric_minutes (owned by the bundle; written by Sparklio's service through
--        sparklio_instrument.sink's record_metric, increment_counter, set_gauge and
--        record_histogram, as sparklio_metrics_writer, which may only insert)
-- grain: one row per minute, kind, name, labels and writer (one process of the service); the
--        service_metrics view adds up the writers
-- why: the guide's section 5 API, aggregated per minute in the process and written in batches
--      instead of one committed row per call on the request path
-- kinds: metric (record_metric), counter (increment_counter: the values are the increments),
--        gauge (set_gauge: value_last is the value it was left at), histogram (record_histogram:
--        le_<x> counts the values at most <x>, cumulative, Prometheus's default buckets; null for
--        the other kinds)

create table ${analytics}.service_metric_minutes (
    minute_start timestamptz not null,
    kind         text not null check (kind in ('metric', 'counter', 'gauge', 'histogram')),
    name         text not null,
    labels       jsonb not null,
    writer       text not null,
    samples      bigint not null check (samples > 0),
    value_sum    double precision not null,
    value_min    double precision not null,
    value_max    double precision not null,
    value_last   double precision not null,
    le_0_005     bigint,
    le_0_01      bigint,
    le_0_025     bigint,
    le_0_05      bigint,
    le_0_075     bigint,
    le_0_1       bigint,
    le_0_25      bigint,
    le_0_5       bigint,
    le_0_75      bigint,
    le_1         bigint,
    le_2_5       bigint,
    le_5         bigint,
    le_7_5       bigint,
    le_10        bigint,
    primary key (minute_start, kind, name, labels, writer)
);
