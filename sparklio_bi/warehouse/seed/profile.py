"""How the demo studio behaves: its agents, models, intents, errors, assets, people, and the table sizes per scale."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from sparklio_bi.errors import ExpectedError

# Traffic: UTC hour of day (European business hours, an American shoulder), Monday first.
DIURNAL = np.array([.15, .12, .1, .1, .12, .2, .35, .6, .85, 1, 1, .95,
                    .85, .95, 1, 1, .95, .85, .7, .55, .45, .35, .25, .2])
WEEKDAY = np.array([1, 1.05, 1.05, 1, .9, .4, .35])
GROWTH = math.log(2.2)  # the last day is 2.2 times as busy as the first
AGENTS = ("planner", "copywriter", "image_generator", "video_generator", "brand_guard",
          "seo_optimizer", "reviewer", "publisher")
MIDDLE_AGENTS = np.array([0, .26, .22, .10, .16, .12, .14, 0])  # steps between planner and the last
AGENT_LATENCY_MS = np.array([2500, 6000, 14000, 75000, 1800, 3500, 4000, 900])
AGENT_ERROR_RATE = np.array([.010, .018, .025, .035, .012, .015, .015, .020])
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet", "claude-haiku", "gemini-pro", "llama-3-70b")
MODEL_SPEED = np.array([1.0, .55, 1.1, .5, .9, 1.35])
MODEL_ERRORS = np.array([.9, 1.1, .85, 1.05, 1.1, 1.5])
MODEL_TIER = np.array([2, 0, 2, 0, 1, 0])  # strong models get the risky requests
INTENTS = ("copywriting", "image_generation", "video_script", "brand_analysis", "seo", "translation", "qa")
INTENT_BY_AGENT = np.array([  # rows: AGENTS, columns: INTENTS
    [.30, .20, .10, .15, .10, .05, .10],
    [.75, 0, 0, 0, .05, .20, 0],
    [0, .95, 0, .05, 0, 0, 0],
    [0, .10, .90, 0, 0, 0, 0],
    [0, 0, 0, .85, 0, 0, .15],
    [.15, 0, 0, 0, .85, 0, 0],
    [0, 0, 0, .20, 0, 0, .80],
    [.30, 0, 0, 0, 0, .30, .40],
])
MODEL_BY_INTENT = np.array([  # rows: INTENTS, columns: MODELS
    [.25, .25, .20, .15, .05, .10],
    [.35, .05, .10, .05, .40, .05],
    [.25, .10, .25, .05, .25, .10],
    [.25, .10, .35, .10, .10, .10],
    [.15, .30, .10, .20, .10, .15],
    [.10, .30, .10, .25, .10, .15],
    [.25, .15, .30, .15, .05, .10],
])
RISKS = ("low", "medium", "high", "critical")
RISK_BY_INTENT = np.array([
    [.60, .30, .08, .02], [.50, .30, .15, .05], [.45, .35, .15, .05], [.30, .35, .25, .10],
    [.70, .25, .04, .01], [.65, .28, .06, .01], [.40, .35, .20, .05],
])
CONTEXT_MEDIAN = np.array([6000, 2000, 9000, 14000, 5000, 4000, 10000])  # tokens, by intent
SHRINK = np.array([[.45, .65], [.60, .80], [.40, .60], [.35, .55], [.50, .70], [.65, .80], [.40, .60]])
ERROR_TYPES = ("timeout", "rate_limit", "invalid_output", "content_policy", "upstream_5xx", "context_length")
ERROR_BY_AGENT = np.array([  # rows: AGENTS, columns: ERROR_TYPES
    [.20, .25, .30, 0, .15, .10], [.15, .25, .25, .15, .15, .05], [.25, .20, .05, .30, .20, 0],
    [.45, .15, .05, .15, .20, 0], [.15, .20, .45, .05, .10, .05], [.15, .30, .30, 0, .15, .10],
    [.15, .25, .35, .05, .10, .10], [.30, .20, .05, 0, .45, 0],
])
RECOVERY_MEDIAN_S = np.array([60, 20, 15, 240, 90, 45])  # by error type
MESSAGES = {
    "timeout": "{agent}: request to {model} timed out after {seconds:.1f} s (attempt 1 of 3)",
    "rate_limit": "{agent}: 429 Too Many Requests from {model}: rate limit of {n} requests/min exceeded",
    "invalid_output": "{agent}: {model} output failed schema validation: missing required field "
                      "'{field}' ({n} tokens returned)",
    "content_policy": "{agent}: generation blocked by {model} content policy (category: {category})",
    "upstream_5xx": "{agent}: upstream provider for {model} returned HTTP 50{d} after {seconds:.1f} s",
    "context_length": "{agent}: prompt of {n} tokens exceeds the context window of {model}",
}
FIELDS = ("headline", "body", "cta", "alt_text", "hashtags", "subject_line")
CATEGORIES = ("violence", "brand_safety", "adult", "hate", "self_harm", "trademark")
ASSET_TYPES = ("image", "copy", "social_post", "banner", "email", "video")
ASSET_SHARE = np.array([.30, .22, .18, .12, .10, .08])
REVIEWS = ("approved", "rejected", "needs_changes")
REVIEW_SHARE = np.array([.70, .12, .18])
REVIEW_SCORE = np.array([[8.3, .8], [3.8, 1.3], [6.0, 1.0]])  # mean, sd by review status
SCORE_TEXT = [f"{s // 10}.{s % 10}" for s in range(101)]
FIRST_NAMES = ("anna", "ben", "chloe", "david", "elena", "felix", "grace", "hugo", "ines", "jonas",
               "kira", "leo", "maya", "noah", "olivia", "paul", "quinn", "rosa", "sam", "tara")
LAST_NAMES = ("keller", "martin", "nowak", "rossi", "silva", "meyer", "dubois", "jensen", "garcia",
              "novak", "weber", "costa", "lindqvist", "moreau", "fischer", "bauer")
DOMAINS = ("gmail.com", "outlook.com", "studio.io", "agency.co", "brandhaus.de", "mail.com")
BRAND_WORDS = (("Nordic", "Golden", "Urban", "Blue", "Wild", "Bright", "Silver", "Green", "Red",
                "Pure", "True", "Little", "Happy", "Solar", "Lunar", "Coastal", "Alpine", "Velvet",
                "Copper", "Maple"),
               ("Coffee", "Studio", "Bakery", "Outfitters", "Cosmetics", "Fitness", "Motors",
                "Travel", "Labs", "Foods", "Apparel", "Home", "Pets", "Wellness", "Books", "Games",
                "Garden", "Tea", "Optics", "Bikes"))
CAMPAIGNS = ("Spring launch", "Summer sale", "Back to school", "Black Friday", "Holiday campaign",
             "Product teaser", "Newsletter", "Brand refresh", "Influencer push", "Webinar promo")


@dataclass(frozen=True)
class Sizes:
    """How many rows each table gets; agent_logs is a target (steps still running have no log)."""

    agent_logs: int
    workflows: int
    projects: int
    users: int
    brands: int

    @property
    def expected_rows(self) -> int:
        """Rows a seed writes in all, about: router_logs as many as agent_logs, assets about 0.8 per
        workflow (for a progress bar; the seed reports the real counts)."""
        return self.users + self.brands + self.projects + round(1.8 * self.workflows) + 2 * self.agent_logs


# Peak memory of a seed, measured (benchmarks/RESULTS.md: 200 MiB at scale 100, 266 MiB at 1000)
# and rounded up: a fixed part plus what grows with the scale.
MEMORY_BASE = 150 * 2**20
MEMORY_PER_SCALE = 200 * 2**10


def max_scale(available: int | None = None) -> float:
    """The largest scale whose seed fits in 80 % of the memory available now."""
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return max(1.0, (0.8 * available - MEMORY_BASE) // MEMORY_PER_SCALE)


def sizes(scale: float) -> Sizes:
    """Row counts for a scale; scale 1 is 10,000 agent executions."""
    if not scale > 0:  # also rejects NaN
        raise ScaleError(f"--scale must be > 0, got {scale}")
    if scale > max_scale():
        need = (MEMORY_BASE + scale * MEMORY_PER_SCALE) / 2**30
        raise ScaleError(f"--scale {scale:g} needs about {need:,.0f} GiB of memory to seed; this machine "
                         f"has room for --scale {max_scale():,.0f} at most")
    agent_logs = max(1, round(10_000 * scale))
    workflows = max(1, round(agent_logs / 5.5))  # 3 to 8 steps each
    projects = max(30, workflows // 20)
    return Sizes(agent_logs, workflows, projects, max(20, projects // 4),
                 int(12 + 8 * math.log2(1 + scale)))


class ScaleError(ExpectedError, ValueError):
    """A --scale that is not positive or does not fit in this machine's memory."""
