-- view: errors
-- grain: one row per failed agent execution, recovered or not (status error or recovered: the
--        rows where agent_logs.is_failed = 1, a test checks the two agree); the reference SQL's
--        status = 'error' misses every failure that later recovered
-- v2: built on agent_logs and adds project_id, brand_id and brand_name so the Brand filter
--     reaches the failure charts; the filter is on status itself, so PostgreSQL reads the
--     latest failures from the partial index on failed executions, and no CTEs, so the view is
--     flattened into the query reading it (the latest 20: milliseconds, not 3 s; see agent_logs v3)
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
from ${analytics}.agent_logs
where status in ('error', 'recovered')
