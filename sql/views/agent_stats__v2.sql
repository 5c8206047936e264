-- view: agent_stats
-- grain: one row per period and brand, agent and model: whole days (SPARKLIO_TIMEZONE) before the day of the
--        rollup's watermark from analytics.agent_rollup, that day's hours from analytics.agent_hours,
--        then the rows created after the watermark, aggregated live from the raw view per hour; so
--        its sums equal the raw view's for any range that starts and ends on a midnight (or on
--        an hour of the current day); for any other range use agent_stats_between(since, until),
--        which the charts read: the same columns, exact for a range whose ends fall at any second
-- v2: agent_stats_between(null, null); the watermark moves with every refresh, not every hour
-- columns:
--   period_start    timestamptz  start of the day or hour the executions started in (time column)
--   brand_id        bigint       brand of the workflow's project
--   brand_name      text         brand name
--   agent_name      text         agent that ran the steps
--   model           text         LLM the agent called
--   executions      bigint       executions started in the period
--   successes       bigint       of those, succeeded
--   latency_ms_sum  bigint       their latencies added up, in milliseconds

select * from ${analytics}.agent_stats_between(null, null)
