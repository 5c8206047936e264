-- view: agent_logs
-- grain: one row per agent execution (one workflow step run by one agent)
-- columns:
--   agent_log_id   bigint       the execution
--   workflow_id    bigint       workflow run it belongs to
--   agent_name     text         agent that ran the step
--   model          text         LLM the agent called
--   status         text         success, error (failed, not recovered) or recovered (failed, then recovered)
--   latency_ms     integer      execution latency in milliseconds
--   error_type     text         error class when the execution failed
--   error_message  text         error text when the execution failed
--   error_at       timestamptz  when it failed
--   recovered_at   timestamptz  when it recovered
--   created_at     timestamptz  when the execution started (time column)
--   is_success     integer      1 when status = success, else 0
--   is_failed      integer      1 when the execution failed (error or recovered), else 0

with agent_logs as (
    select
        id as agent_log_id,
        workflow_id,
        agent_name,
        model,
        status,
        latency_ms,
        error_type,
        error_message,
        error_at,
        recovered_at,
        created_at
    from ${source}.agent_logs
),

final as (
    select
        *,
        (status = 'success')::integer as is_success,
        (status in ('error', 'recovered'))::integer as is_failed
    from agent_logs
)

select * from final
