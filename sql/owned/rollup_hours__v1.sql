-- tables: <name>_hours, one per rollup: the rollup's sums per whole hour (hours of
--         SPARKLIO_TIMEZONE) for every hour before the watermark, and the watermark's own hour
--         up to the watermark; from v2 of the rollups on, <name>_rollup holds only whole days
--         before the watermark's day (the sums of their hours)
-- why: a time range may start and end at any second; whole days inside it come from
--      <name>_rollup, the hours at its ends from <name>_hours and the seconds at its ends from the
--      raw view (<name>_stats_between), so every range is answered exactly from few rows

create table ${analytics}.agent_hours (like ${analytics}.agent_rollup);
create index agent_hours_period_idx on ${analytics}.agent_hours (period_start);

create table ${analytics}.error_hours (like ${analytics}.error_rollup);
create index error_hours_period_idx on ${analytics}.error_hours (period_start);

create table ${analytics}.router_hours (like ${analytics}.router_rollup);
create index router_hours_period_idx on ${analytics}.router_hours (period_start);

create table ${analytics}.workflow_hours (like ${analytics}.workflow_rollup);
create index workflow_hours_period_idx on ${analytics}.workflow_hours (period_start);

create table ${analytics}.asset_hours (like ${analytics}.asset_rollup);
create index asset_hours_period_idx on ${analytics}.asset_hours (period_start);
