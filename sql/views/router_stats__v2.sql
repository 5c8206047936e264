-- view: router_stats
-- grain: one row per period and intent, model and risk level: whole days (SPARKLIO_TIMEZONE) before the day of the
--        rollup's watermark from analytics.router_rollup, that day's hours from analytics.router_hours,
--        then the rows created after the watermark, aggregated live from the raw view per hour; so
--        its sums equal the raw view's for any range that starts and ends on a midnight (or on
--        an hour of the current day); for any other range use router_stats_between(since, until),
--        which the charts read: the same columns, exact for a range whose ends fall at any second
-- v2: router_stats_between(null, null); the watermark moves with every refresh, not every hour
-- columns:
--   period_start         timestamptz  start of the day or hour the requests were routed in (time column)
--   intent_type          text         intent the router classified
--   selected_model       text         LLM the router picked
--   risk_level           text         low, medium, high or critical
--   decisions            bigint       requests routed in the period
--   context_before_sum   bigint       their context tokens before minimisation, added up
--   context_after_sum    bigint       their context tokens sent to the model, added up

select * from ${analytics}.router_stats_between(null, null)
