-- view: router_logs
-- grain: one row per SmartRouter decision (one classified request)
-- columns:
--   router_log_id        bigint            the decision
--   workflow_id          bigint            workflow run that made the request
--   intent_type          text              intent the router classified
--   selected_model       text              LLM the router picked
--   risk_level           text              low, medium, high or critical
--   context_size_before  integer           context tokens before minimisation
--   context_size_after   integer           context tokens sent to the model
--   context_shrink_ratio double precision  1 - after / before (0 when before is 0)
--   created_at           timestamptz       when the request was routed (time column)

with router_logs as (
    select
        id as router_log_id,
        workflow_id,
        intent_type,
        selected_model,
        risk_level,
        context_size_before,
        context_size_after,
        created_at
    from ${source}.router_logs
),

final as (
    select
        router_log_id,
        workflow_id,
        intent_type,
        selected_model,
        risk_level,
        context_size_before,
        context_size_after,
        coalesce(1 - context_size_after::double precision / nullif(context_size_before, 0), 0) as context_shrink_ratio,
        created_at
    from router_logs
)

select * from final
