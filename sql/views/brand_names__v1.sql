-- view: brand_names
-- grain: one row per brand
-- why: the dashboards' Brand filters list their options from here (a few rows), never from a
--      GROUP BY over a fact view
-- columns:
--   brand_id    bigint  the brand
--   brand_name  text    brand name

select
    id as brand_id,
    name as brand_name
from ${source}.brands
