-- tables: the rollups (owned by the bundle, kept current by `sparklio-bi rollups refresh`, which the
--         collector runs while Superset is served) and their state
-- grain of each rollup table: one row per period and dimension values, where a period is a whole
--        day (in SPARKLIO_TIMEZONE) before the day of the watermark and a whole hour from that
--        day's midnight up to the watermark; the *_stats views add the rows from the watermark on,
--        aggregated live from the raw views, so every number equals the raw view's
-- why: the charts' GROUP BYs over 10 million rows took 0.6-1.5 s; a week of a rollup is a few
--      thousand rows

create table ${analytics}.rollup_state (
    rollup       text primary key,
    watermark    timestamptz not null,  -- rows created from here on are read live
    last_id      bigint not null,       -- the highest source id seen by the last refresh
    last_xmin    bigint not null,       -- txid_snapshot_xmin of the last refresh's snapshot
    refreshed_at timestamptz not null
);

create table ${analytics}.agent_rollup (
    period_start    timestamptz not null,
    brand_id        bigint not null,
    brand_name      text not null,
    agent_name      text not null,
    model           text not null,
    executions      bigint not null,
    successes       bigint not null,
    latency_ms_sum  bigint not null
);
create index agent_rollup_period_idx on ${analytics}.agent_rollup (period_start);

create table ${analytics}.error_rollup (
    period_start          timestamptz not null,
    brand_id              bigint not null,
    brand_name            text not null,
    agent_name            text not null,
    model                 text not null,
    error_type            text not null,
    failures              bigint not null,
    still_failing         bigint not null,
    recovered             bigint not null,
    recovery_seconds_sum  double precision
);
create index error_rollup_period_idx on ${analytics}.error_rollup (period_start);

create table ${analytics}.router_rollup (
    period_start         timestamptz not null,
    intent_type          text not null,
    selected_model       text not null,
    risk_level           text not null,
    decisions            bigint not null,
    context_before_sum   bigint not null,
    context_after_sum    bigint not null
);
create index router_rollup_period_idx on ${analytics}.router_rollup (period_start);

create table ${analytics}.workflow_rollup (
    period_start          timestamptz not null,
    brand_id              bigint not null,
    brand_name            text not null,
    status                text not null,
    runs                  bigint not null,
    durations             bigint not null,
    duration_seconds_sum  double precision
);
create index workflow_rollup_period_idx on ${analytics}.workflow_rollup (period_start);

create table ${analytics}.asset_rollup (
    period_start      timestamptz not null,
    brand_id          bigint not null,
    brand_name        text not null,
    asset_type        text not null,
    assets            bigint not null,
    reviewed          bigint not null,
    approved          bigint not null,
    scored            bigint not null,
    review_score_sum  numeric
);
create index asset_rollup_period_idx on ${analytics}.asset_rollup (period_start);

-- the agent and model names seen, for the dashboards' Agent and Model filters
create table ${analytics}.agent_model_pairs (
    agent_name  text not null,
    model       text not null,
    primary key (agent_name, model)
);
