-- view: agent_logs
-- grain: one row per agent execution (one workflow step run by one agent)
-- v2: adds project_id, brand_id and brand_name so agent dashboards can be filtered by brand
-- v3: the same columns; left joins (every execution has a workflow, project and brand: NOT NULL
--     foreign keys, so no row changes) let PostgreSQL drop the joins a query does not use; and no
--     CTEs (against the house style): PostgreSQL does not flatten a view with WITH into the query
--     reading it, so an ORDER BY created_at DESC LIMIT 20 sorted every failure (3 s at 10 million
--     executions) instead of reading the latest 20 from the index
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
--   project_id     bigint       project of the workflow run
--   brand_id       bigint       brand of that project
--   brand_name     text         brand name

select
    agent_logs.id as agent_log_id,
    agent_logs.workflow_id,
    agent_logs.agent_name,
    agent_logs.model,
    agent_logs.status,
    agent_logs.latency_ms,
    agent_logs.error_type,
    agent_logs.error_message,
    agent_logs.error_at,
    agent_logs.recovered_at,
    agent_logs.created_at,
    (agent_logs.status = 'success')::integer as is_success,
    (agent_logs.status in ('error', 'recovered'))::integer as is_failed,
    workflows.project_id,
    projects.brand_id,
    brands.name as brand_name
from ${source}.agent_logs
left join ${source}.workflows on agent_logs.workflow_id = workflows.id
left join ${source}.projects on workflows.project_id = projects.id
left join ${source}.brands on projects.brand_id = brands.id
