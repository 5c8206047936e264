-- view: agent_logs
-- grain: one row per agent execution (one workflow step run by one agent)
-- v2: adds project_id, brand_id and brand_name so agent dashboards can be filtered by brand
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

workflows as (
    select id as workflow_id, project_id
    from ${source}.workflows
),

projects as (
    select id as project_id, brand_id
    from ${source}.projects
),

brands as (
    select id as brand_id, name as brand_name
    from ${source}.brands
),

final as (
    select
        agent_logs.*,
        (agent_logs.status = 'success')::integer as is_success,
        (agent_logs.status in ('error', 'recovered'))::integer as is_failed,
        workflows.project_id,
        projects.brand_id,
        brands.brand_name
    from agent_logs
    inner join workflows on agent_logs.workflow_id = workflows.workflow_id
    inner join projects on workflows.project_id = projects.project_id
    inner join brands on projects.brand_id = brands.brand_id
)

select * from final
