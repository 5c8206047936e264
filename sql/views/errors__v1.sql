-- view: errors
-- grain: one row per failed agent execution, recovered or not (agent_logs.status in error, recovered);
--        the reference SQL's status = 'error' misses every failure that later recovered
-- columns:
--   agent_log_id      bigint            the failed execution
--   workflow_id       bigint            workflow run it belongs to
--   agent_name        text              agent that failed
--   model             text              LLM the agent called
--   error_type        text              error class
--   error_message     text              full error text
--   error_preview     text              first 100 characters of error_message
--   status            text              error (still failed) or recovered
--   is_recovered      integer           1 when the failure was recovered, else 0
--   error_at          timestamptz       when it failed
--   recovered_at      timestamptz       when it recovered; null if not
--   recovery_seconds  double precision  recovered_at - error_at in seconds; null if not recovered
--   created_at        timestamptz       when the execution started (time column)

with failed as (
    select
        id as agent_log_id,
        workflow_id,
        agent_name,
        model,
        error_type,
        error_message,
        status,
        error_at,
        recovered_at,
        created_at
    from ${source}.agent_logs
    where status in ('error', 'recovered')
),

final as (
    select
        agent_log_id,
        workflow_id,
        agent_name,
        model,
        error_type,
        error_message,
        substring(error_message, 1, 100) as error_preview,
        status,
        (status = 'recovered')::integer as is_recovered,
        error_at,
        recovered_at,
        extract(epoch from recovered_at - error_at)::double precision as recovery_seconds,
        created_at
    from failed
)

select * from final
