-- table: system_samples (owned by the bundle, filled by `sparklio-bi collect`)
-- grain: one row per sample time, metric and dimension

create table ${analytics}.system_samples (
    sampled_at  timestamptz not null,
    metric      text not null,
    dimension   text not null default '',
    value       double precision not null,
    primary key (sampled_at, metric, dimension)
);

create index system_samples_metric_idx on ${analytics}.system_samples (metric, sampled_at);
