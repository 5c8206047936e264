-- view: agent_models
-- grain: one row per agent and model pair seen in agent_logs (kept by the rollup refresh)
-- why: the dashboards' Agent and Model filters list their options from here, never from a
--      GROUP BY over 10 million executions
-- columns:
--   agent_name  text  an agent
--   model       text  a model it called

select
    agent_name,
    model
from ${analytics}.agent_model_pairs
