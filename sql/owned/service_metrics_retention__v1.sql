-- table: service_metrics_retention (owned by the bundle): the retention, in days, the service's
--        writers last applied (90 until one does); the api_requests and service_metrics views show
--        the minutes within it
-- grain: one row
-- function: prune_service_metrics(retention_days) (owned by the bundle, called by
--           sparklio_instrument.sink's writer every few minutes, SPARKLIO_SERVICE_METRICS_RETENTION_DAYS)
-- why: the writers' role may only insert into service_request_minutes and service_metric_minutes.
--      This function runs with its owner's rights: it records the retention and deletes at most
--      10,000 rows of each table older than it per call (short, so a call never holds the tables
--      for long; the writer calls it again while it deletes that many). A retention under one day
--      is refused: the writers' role can never delete a minute of the last day.

create table ${analytics}.service_metrics_retention (
    one_row     boolean primary key default true check (one_row),
    days        integer not null check (days >= 1),
    applied_at  timestamptz
);

insert into ${analytics}.service_metrics_retention (days) values (90);

create function ${analytics}.prune_service_metrics(retention_days integer)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog
-- a quoted body, not dollar quotes: the file is a string.Template (dollar signs are its own)
as '
declare
    cut constant timestamptz := now() - make_interval(days => retention_days);
    requests_gone bigint;
    metrics_gone bigint;
begin
    if retention_days is null or retention_days < 1 then
        raise exception ''a retention of % days: it must be at least 1'', retention_days
            using errcode = ''invalid_parameter_value'';
    end if;
    update ${analytics}.service_metrics_retention
    set days = retention_days, applied_at = now()
    where days <> retention_days or applied_at is null;
    delete from ${analytics}.service_request_minutes
    where ctid = any(array(
        select ctid from ${analytics}.service_request_minutes where minute_start < cut limit 10000
    ));
    get diagnostics requests_gone = row_count;
    delete from ${analytics}.service_metric_minutes
    where ctid = any(array(
        select ctid from ${analytics}.service_metric_minutes where minute_start < cut limit 10000
    ));
    get diagnostics metrics_gone = row_count;
    return requests_gone + metrics_gone;
end
';
