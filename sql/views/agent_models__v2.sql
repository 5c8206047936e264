-- view: agent_models
-- grain: one row per brand, agent and model seen in agent_logs
-- why: the dashboards' Agent and Model filters list their options from here, never from a
--      GROUP BY over 10 million executions
-- v2: per brand, so a brand rule limits the filters' options to the brand's own pairs like every
--     other dataset with a brand_id (v1's pairs had no brand); read from agent_stats (the rollup
--     plus the live rows), so a pair shows as soon as its first execution does
-- columns:
--   brand_id    bigint  brand whose executions used the pair
--   agent_name  text    an agent
--   model       text    a model it called

select
    brand_id,
    agent_name,
    model
from ${analytics}.agent_stats
group by brand_id, agent_name, model
