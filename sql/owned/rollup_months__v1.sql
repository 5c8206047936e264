-- tables: <name>_months, one per rollup: the rollup's sums per whole month (months of
--         SPARKLIO_TIMEZONE) for every month before the month of the watermark's day, added up
--         from <name>_rollup's days
-- why: a chart that shows totals over a range (per agent, per brand, one number) and not a
--      series by day or hour reads a quarter as three month rows per key instead of ninety day
--      rows (<name>_stats_between(since, until, slack, whole_months => true))

create table ${analytics}.agent_months (like ${analytics}.agent_rollup);
create index agent_months_period_idx on ${analytics}.agent_months (period_start);

create table ${analytics}.error_months (like ${analytics}.error_rollup);
create index error_months_period_idx on ${analytics}.error_months (period_start);

create table ${analytics}.router_months (like ${analytics}.router_rollup);
create index router_months_period_idx on ${analytics}.router_months (period_start);

create table ${analytics}.workflow_months (like ${analytics}.workflow_rollup);
create index workflow_months_period_idx on ${analytics}.workflow_months (period_start);

create table ${analytics}.asset_months (like ${analytics}.asset_rollup);
create index asset_months_period_idx on ${analytics}.asset_months (period_start);
