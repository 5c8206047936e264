-- tables: each rollup with brand columns (agent, error, workflow, asset) added up over every brand, at
--         each of its grains: <name>_hours_all_brands, <name>_rollup_all_brands (days) and
--         <name>_months_all_brands, the same columns as <name>_hours, <name>_rollup and <name>_months
--         with brand_id and brand_name null; written by every refresh in the transaction that
--         writes the rows they add up (sparklio_bi.rollups), so both agree at every watermark
-- grain: one row per period and dimension values other than the brand
-- why: a chart that neither shows nor filters the brand reads a few dozen rows a day instead of one
--      per brand (rollup_all_brands_buckets__v1.sql)

create table ${analytics}.agent_hours_all_brands (like ${analytics}.agent_hours);
alter table ${analytics}.agent_hours_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index agent_hours_all_brands_period_idx on ${analytics}.agent_hours_all_brands (period_start);

create table ${analytics}.agent_rollup_all_brands (like ${analytics}.agent_rollup);
alter table ${analytics}.agent_rollup_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index agent_rollup_all_brands_period_idx on ${analytics}.agent_rollup_all_brands (period_start);

create table ${analytics}.agent_months_all_brands (like ${analytics}.agent_months);
alter table ${analytics}.agent_months_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index agent_months_all_brands_period_idx on ${analytics}.agent_months_all_brands (period_start);

create table ${analytics}.error_hours_all_brands (like ${analytics}.error_hours);
alter table ${analytics}.error_hours_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index error_hours_all_brands_period_idx on ${analytics}.error_hours_all_brands (period_start);

create table ${analytics}.error_rollup_all_brands (like ${analytics}.error_rollup);
alter table ${analytics}.error_rollup_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index error_rollup_all_brands_period_idx on ${analytics}.error_rollup_all_brands (period_start);

create table ${analytics}.error_months_all_brands (like ${analytics}.error_months);
alter table ${analytics}.error_months_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index error_months_all_brands_period_idx on ${analytics}.error_months_all_brands (period_start);

create table ${analytics}.workflow_hours_all_brands (like ${analytics}.workflow_hours);
alter table ${analytics}.workflow_hours_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index workflow_hours_all_brands_period_idx on ${analytics}.workflow_hours_all_brands (period_start);

create table ${analytics}.workflow_rollup_all_brands (like ${analytics}.workflow_rollup);
alter table ${analytics}.workflow_rollup_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index workflow_rollup_all_brands_period_idx on ${analytics}.workflow_rollup_all_brands (period_start);

create table ${analytics}.workflow_months_all_brands (like ${analytics}.workflow_months);
alter table ${analytics}.workflow_months_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index workflow_months_all_brands_period_idx on ${analytics}.workflow_months_all_brands (period_start);

create table ${analytics}.asset_hours_all_brands (like ${analytics}.asset_hours);
alter table ${analytics}.asset_hours_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index asset_hours_all_brands_period_idx on ${analytics}.asset_hours_all_brands (period_start);

create table ${analytics}.asset_rollup_all_brands (like ${analytics}.asset_rollup);
alter table ${analytics}.asset_rollup_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index asset_rollup_all_brands_period_idx on ${analytics}.asset_rollup_all_brands (period_start);

create table ${analytics}.asset_months_all_brands (like ${analytics}.asset_months);
alter table ${analytics}.asset_months_all_brands alter column brand_id drop not null, alter column brand_name drop not null;
create index asset_months_all_brands_period_idx on ${analytics}.asset_months_all_brands (period_start);
