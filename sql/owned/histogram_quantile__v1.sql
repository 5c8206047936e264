-- function: histogram_quantile(q, cumulative, total) (owned by the bundle): the q-quantile
--           (0 < q <= 1) of a Prometheus histogram with the default buckets of
--           sparklio_http_request_duration_seconds, as Prometheus's histogram_quantile computes it:
--           the rank q * total found in the first bucket whose cumulative count reaches it, and
--           interpolated linearly inside that bucket (from 0 in the first); a rank in the +Inf
--           bucket gives the highest finite bound (10); null for no observations or q outside (0, 1]
-- arguments: cumulative, the counts at or below 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
--            0.75, 1, 2.5, 5, 7.5 and 10 seconds (the le_* columns, summed), and total, the +Inf
--            bucket (requests)
-- why: the reference SQL of the API Performance dashboard (sparklio_bi/quality/reference_api.py)
--      and SQL Lab: select route, histogram_quantile(0.95, array[sum(le_0_005), ...], sum(requests))
--      from analytics.api_requests group by route. The charts compute the same with a CASE over the
--      sums (a chart query calls no bundle function but the range functions)

create function ${analytics}.histogram_quantile(q numeric, cumulative numeric[], total numeric)
returns double precision
language plpgsql immutable parallel safe
set search_path = pg_catalog
as '
declare
    bounds constant numeric [] := array[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
    rank numeric;
    below numeric := 0;
    lower_bound numeric := 0;
begin
    if q is null or q <= 0 or q > 1 or total is null or total <= 0 then
        return null;
    end if;
    rank := q * total;
    for i in 1 .. array_length(bounds, 1) loop
        if cumulative[i] >= rank then
            return lower_bound + (bounds[i] - lower_bound) * (rank - below) / (cumulative[i] - below);
        end if;
        below := cumulative[i];
        lower_bound := bounds[i];
    end loop;
    return bounds[array_length(bounds, 1)];
end
';
