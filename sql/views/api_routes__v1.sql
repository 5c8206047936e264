-- view: api_routes
-- grain: one row per route template and method Sparklio's service has answered (service_request_routes,
--        kept by the trigger that adds up its minutes): the options of the API Performance
--        dashboard's Route and Method filters, without a GROUP BY over the requests
-- columns:
--   route         text         the route template (/projects/{id}); <unmatched> for every path no route matched
--   http_method   text         GET, POST, ... (OTHER for any other)
--   first_minute  timestamptz  the first minute it was answered in

with final as (
    select
        route,
        http_method,
        first_minute
    from ${analytics}.service_request_routes
)

select * from final
