-- view: errors
-- grain: one row per failed agent execution, recovered or not (agent_logs.is_failed = 1);
--        the reference SQL's status = 'error' misses every failure that later recovered
-- v2: built on agent_logs, where "failed" is defined once, and adds project_id, brand_id and
--     brand_name so the Brand filter reaches the failure charts
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
--   project_id        bigint            project of the workflow run
--   brand_id          bigint            brand of that project
--   brand_name        text              brand name

with failed as (
    select *
    from ${analytics}.agent_logs
    where is_failed = 1
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
        created_at,
        project_id,
        brand_id,
        brand_name
    from failed
)

select * from final
