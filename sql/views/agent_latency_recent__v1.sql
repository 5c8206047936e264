-- view: agent_latency_recent
-- grain: one row per agent with executions started in the last 5 minutes (at query time)
-- why: the exporter's p50/p95 latency gauges (`sparklio-bi metrics serve`); a range on the
--      created_at index, a few hundred rows at the application's busiest
-- columns:
--   agent_name      text              agent that ran the steps
--   executions      bigint            executions started in the last 5 minutes
--   latency_p50_ms  double precision  their median latency in milliseconds
--   latency_p95_ms  double precision  their 95th percentile latency in milliseconds

with recent as (
    select agent_name, latency_ms
    from ${source}.agent_logs
    where created_at >= now() - interval '5 minutes'
),

final as (
    select
        agent_name,
        count(*) as executions,
        percentile_cont(0.5) within group (order by latency_ms) as latency_p50_ms,
        percentile_cont(0.95) within group (order by latency_ms) as latency_p95_ms
    from recent
    group by agent_name
)

select * from final
