"""Realistic, deterministic demo data for Sparklio's seven source tables (the last 90 days).

Scale 1 is 10,000 agent executions; the other tables follow in proportion. Everything is drawn
from one numpy Generator, vectorised a chunk of days at a time and streamed in with COPY, inside
one transaction: a failed seed leaves the previous rows as they were.
"""
from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy.engine import make_url

from . import config, database
from .errors import BundleError

HOUR = 3_600_000  # timestamps are integer milliseconds since the epoch
DAY = 24 * HOUR
WINDOW_DAYS = 90
CHUNK_WORKFLOWS = 25_000  # ~140k agent_logs per chunk
TABLE_COLUMNS = {
    "users": "id, email, created_at",
    "brands": "id, name, created_at",
    "projects": "id, brand_id, user_id, name, created_at",
    "workflows": "id, project_id, status, created_at, completed_at",
    "agent_logs": "id, workflow_id, agent_name, model, status, latency_ms, error_type, error_message, "
                  "error_at, recovered_at, created_at",
    "router_logs": "id, workflow_id, intent_type, selected_model, risk_level, context_size_before, "
                   "context_size_after, created_at",
    "assets": "id, project_id, workflow_id, asset_type, review_status, review_score, created_at",
}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
Progress = Callable[[str, int, int], None]

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


class ScaleError(BundleError, ValueError):
    """A --scale that is not positive or does not fit in this machine's memory."""


class NotDemoData(BundleError):
    """The source tables are not the bundle's demo tables: seeding would destroy real rows."""


def check_replaceable(url: str, settings: config.Settings, replace_application_data: bool = False) -> None:
    """Refuse to seed over source tables sparklio-bi did not create (unless told loudly)."""
    from . import migrate

    if not replace_application_data and not migrate.is_demo(url, settings):
        safe = make_url(url).render_as_string(hide_password=True)
        raise NotDemoData(f"{safe}: the source tables were not created by sparklio-bi (no demo marker on "
                          f"{settings.source_schema}.agent_logs); seeding would delete their rows. Point "
                          "DATABASE_URL at a demo database, or pass --replace-application-data")


def seed(url: str, settings: config.Settings, scale: float, seed: int = 42, now: datetime | None = None,
         progress: Progress | None = None,
         replace_application_data: bool = False) -> dict[str, int]:
    """Replace the source tables' rows with demo data of the 90 days before `now`; rows per table.
    Only tables the bundle created (marked by `migrate.apply_source_ddl`) unless told otherwise."""
    size = sizes(scale)
    check_replaceable(url, settings, replace_application_data)
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    now_us = (now - EPOCH) // timedelta(microseconds=1)
    end = now_us // 1000  # whole milliseconds: never after `now`, never before `now` - 90 days
    rng = np.random.default_rng(seed)
    timeline = Timeline(end - WINDOW_DAYS * DAY + int(now_us % 1000 > 0), end)
    with database.connect(url) as conn, conn.cursor() as cur:
        out = Writer(cur, settings.source_schema, progress)
        out.truncate()
        projects = _write_owners(rng, timeline, size, out)
        _write_activity(rng, timeline, size, projects, out)
        out.finish()
        cur.execute("select to_regclass(%s)", (f"{settings.analytics_schema}.rollup_state",))
        if cur.fetchone()[0]:  # the rollups exist (migrated): rebuilt from the new rows, atomically
            from . import rollups

            rollups.refresh(conn, settings, full=True)
    return out.counts


class Timeline:
    """The window cut into UTC hours, each weighted by how busy the studio is then."""

    def __init__(self, start: int, end: int):
        edges = np.unique(np.r_[start, np.arange(start // HOUR + 1, end // HOUR + 1) * HOUR, end])
        self.start, self.end = start, end
        self.lo, self.length = edges[:-1], np.diff(edges)
        growth = np.exp(GROWTH * (self.lo - start) / (end - start))
        weekday = (self.lo // DAY + 3) % 7  # 1970-01-01 was a Thursday
        self.weight = self.length / HOUR * DIURNAL[self.lo // HOUR % 24] * WEEKDAY[weekday] * growth
        self.cum = np.r_[0, np.cumsum(self.weight)]
        day = self.lo // DAY - start // DAY
        self.days = int(day[-1]) + 1
        first = np.searchsorted(day, np.arange(self.days + 1))
        self.day_lo, self.day_hi = self.cum[first[:-1]], self.cum[first[1:]]

    def day_counts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n events spread over the days: each day gets at least the whole part of its share."""
        expected = n * (self.day_hi - self.day_lo) / self.cum[-1]
        counts = np.floor(expected).astype(np.int64)
        rest = expected - counts
        if n > counts.sum():
            counts += rng.multinomial(n - counts.sum(), rest / rest.sum())
        return counts

    def sample(self, rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
        """One sorted timestamp within each given day, following the hourly weights."""
        x = self.day_lo[days] + rng.random(len(days)) * (self.day_hi - self.day_lo)[days]
        hour = np.clip(np.searchsorted(self.cum, x, side="right") - 1, 0, len(self.weight) - 1)
        into = np.clip((x - self.cum[hour]) / self.weight[hour], 0, 1)
        return np.sort(self.lo[hour] + (into * (self.length[hour] - 1)).astype(np.int64))

    def events(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n sorted timestamps over the whole window; the first at its very start."""
        times = self.sample(rng, np.repeat(np.arange(self.days), self.day_counts(rng, n)))
        times[0] = self.start  # so the first workflows have a user, brand and project to run for
        return times


class Writer:
    """COPYs column lists into the source tables and counts the rows."""

    def __init__(self, cur, schema: str, progress: Progress | None):
        self.cur, self.schema, self.progress = cur, schema, progress
        self.counts = {table: 0 for table in TABLE_COLUMNS}
        self.expected: dict[str, int] = {}

    def truncate(self) -> None:
        tables = ", ".join(f"{self.schema}.{table}" for table in TABLE_COLUMNS)
        self.cur.execute(f"truncate table {tables} restart identity cascade")

    def write(self, table: str, columns: list[list[str]]) -> None:
        if columns[0]:
            rows = "\n".join(map("\t".join, zip(*columns))) + "\n"
            self.cur.copy_expert(f"copy {self.schema}.{table} ({TABLE_COLUMNS[table]}) from stdin",
                                 io.BytesIO(rows.encode()))
        self.counts[table] += len(columns[0])
        if self.progress:
            done = self.counts[table]
            self.progress(table, done, max(done, self.expected.get(table, done)))

    def finish(self) -> None:
        """Point each id sequence past the rows written, report final totals, ANALYZE."""
        for table, rows in self.counts.items():
            name = f"{self.schema}.{table}"
            self.cur.execute(f"select setval(pg_get_serial_sequence(%s, 'id'), {rows + 1}, false)", (name,))
            self.cur.execute(f"analyze {name}")
            if self.progress:
                self.progress(table, rows, rows)


def _ints(values: np.ndarray) -> list[str]:
    return list(map(str, values.tolist()))


def _labels(names, index: np.ndarray) -> list[str]:
    return list(map(names.__getitem__, index.tolist()))


def _stamps(ms: np.ndarray) -> list[str]:
    return np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()


def _nullable(n: int, where: np.ndarray, values: list[str]) -> list[str]:
    """A column of \\N with `values` at the rows of `where` (a boolean mask)."""
    column = ["\\N"] * n
    for i, value in zip(np.flatnonzero(where).tolist(), values):
        column[i] = value
    return column


def _choose(rng: np.random.Generator, probabilities: np.ndarray, given: np.ndarray) -> np.ndarray:
    """For each row, a column index of `probabilities[given]` (rows of the table sum to 1)."""
    cumulative = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(given))
    return np.minimum((u[:, None] > cumulative[given]).sum(axis=1), probabilities.shape[1] - 1)


def _zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Cumulative popularity of n items in random order: a few get most of the choices."""
    return np.cumsum(1.0 / (rng.permutation(n) + 1) ** exponent)


def _pick_earlier(rng: np.random.Generator, created: np.ndarray, popularity: np.ndarray,
                  at: np.ndarray) -> np.ndarray:
    """For each time in `at`, a popularity-weighted index among the items created by then."""
    available = np.maximum(np.searchsorted(created, at, side="right"), 1)
    x = rng.random(len(at)) * popularity[available - 1]
    return np.minimum(np.searchsorted(popularity, x, side="right"), available - 1)


def _systematic(rng: np.random.Generator, p: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    """Rows picked with probability p, evenly spread within each group.

    Unlike independent coin flips, a group never goes long without a pick, so every agent shows
    failures in any recent week even at small scales.
    """
    order = np.argsort(group, kind="stable")
    cum, g = np.cumsum(p[order]), group[order]
    before = np.r_[0.0, cum][np.searchsorted(g, np.arange(groups))]
    level = cum - before[g] + rng.random(groups)[g]
    picked = np.empty(len(p), dtype=bool)
    picked[order] = np.floor(level) > np.floor(level - p[order])
    return picked


def _write_owners(rng, timeline: Timeline, size: Sizes, out: Writer) -> tuple[np.ndarray, np.ndarray]:
    """Users, brands and projects; returns the projects' creation times and popularity."""
    users, brands = _write_users(rng, timeline, size.users, out), _write_brands(rng, timeline, size.brands, out)
    projects = timeline.events(rng, size.projects)
    user = _pick_earlier(rng, users, _zipf_weights(rng, size.users, 1.1), projects)
    brand = _pick_earlier(rng, brands, _zipf_weights(rng, size.brands, 1.0), projects)
    ids = np.arange(1, size.projects + 1)
    campaign = rng.integers(len(CAMPAIGNS), size=size.projects)
    names = [f"{CAMPAIGNS[c]} #{i}" for c, i in zip(campaign.tolist(), ids.tolist())]
    out.expected["projects"] = size.projects
    out.write("projects", [_ints(ids), _ints(brand + 1), _ints(user + 1), names, _stamps(projects)])
    return projects, _zipf_weights(rng, size.projects, 0.8)


def _write_users(rng, timeline: Timeline, n: int, out: Writer) -> np.ndarray:
    """Signups, more of them as the studio grows; returns their times."""
    signups = timeline.events(rng, n)
    ids = np.arange(1, n + 1)
    first, last, domain = (rng.integers(len(words), size=n) for words in (FIRST_NAMES, LAST_NAMES, DOMAINS))
    emails = [f"{FIRST_NAMES[f]}.{LAST_NAMES[s]}{i}@{DOMAINS[d]}"  # the id keeps them unique
              for f, s, i, d in zip(first.tolist(), last.tolist(), ids.tolist(), domain.tolist())]
    out.expected["users"] = n
    out.write("users", [_ints(ids), emails, _stamps(signups)])
    return signups


def _write_brands(rng, timeline: Timeline, n: int, out: Writer) -> np.ndarray:
    """Brands, most of them onboarded early in the window; returns their creation times."""
    created = timeline.start + (np.sort(rng.beta(0.7, 4, n)) * (timeline.end - timeline.start)).astype(np.int64)
    created[0] = timeline.start
    combos = rng.permutation(len(BRAND_WORDS[0]) * len(BRAND_WORDS[1]))
    words = len(BRAND_WORDS[1])
    names = [f"{BRAND_WORDS[0][c // words]} {BRAND_WORDS[1][c % words]}"
             + (f" {i // len(combos) + 1}" if i >= len(combos) else "")  # more brands than names
             for i, c in enumerate(np.resize(combos, n).tolist())]
    out.expected["brands"] = n
    out.write("brands", [_ints(np.arange(1, n + 1)), names, _stamps(created)])
    return created


def _chunks(counts: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive ranges of whole days holding at most CHUNK_WORKFLOWS workflows (or one day)."""
    bounds, running = [0], 0
    for day, count in enumerate(counts.tolist()):
        if running and running + count > CHUNK_WORKFLOWS:
            bounds.append(day)
            running = 0
        running += count
    return list(zip(bounds, bounds[1:] + [len(counts)]))


def _incidents(rng, timeline: Timeline, scale: float) -> list[tuple]:
    """A few short windows in which one agent or one model fails far more often; the first is recent.

    Each is (which: 0 agent / 1 model, index, start, end, error multiplier, dominant error type).
    """
    found = []
    for i in range(5 + int(math.log2(1 + scale))):
        span = 7 if i == 0 else WINDOW_DAYS
        start = timeline.end - int(rng.random() * (span - 0.2) * DAY) - 4 * HOUR
        which = int(rng.random() < 0.4)
        index = int(rng.integers(len(MODELS) if which else len(AGENTS)))
        length = int(min(rng.lognormal(math.log(90), 0.5), 300) * 60_000)
        kinds = ("rate_limit", "upstream_5xx", "timeout") if which else ("timeout", "invalid_output")
        kind = ERROR_TYPES.index(kinds[rng.integers(len(kinds))])
        found.append((which, index, start, start + length, float(rng.uniform(10, 25)), kind))
    return found


def _write_activity(rng, timeline: Timeline, size: Sizes, projects: tuple, out: Writer) -> None:
    """Workflows with their agent steps, router decisions and assets, a chunk of days at a time."""
    counts = timeline.day_counts(rng, size.workflows)
    incidents = _incidents(rng, timeline, size.agent_logs / 10_000)
    out.expected.update(workflows=size.workflows, agent_logs=size.agent_logs,
                        router_logs=size.agent_logs, assets=int(size.workflows * 0.8))
    for first_day, last_day in _chunks(counts):
        starts = timeline.sample(rng, np.repeat(np.arange(first_day, last_day), counts[first_day:last_day]))
        project = _pick_earlier(rng, projects[0], projects[1], starts)
        steps, planned, started = _steps(rng, starts, timeline.end)
        failed = _failures(rng, steps, incidents, timeline.end)
        status, completed = _outcomes(rng, starts, planned, started, steps, failed, timeline.end)
        first_id = out.counts["workflows"] + 1
        _write_workflows(out, first_id, project, status, starts, completed)
        _write_steps(rng, out, first_id, steps, failed, timeline)
        _write_assets(rng, out, first_id, project, status, starts, completed, timeline.end)


@dataclass
class Steps:
    """Agent executions of a chunk's workflows, each with the router decision before it."""

    workflow: np.ndarray  # index of the workflow in the chunk
    agent: np.ndarray
    intent: np.ndarray
    risk: np.ndarray
    model: np.ndarray
    latency: np.ndarray  # ms
    start: np.ndarray
    routed: np.ndarray

    def keep(self, mask: np.ndarray) -> Steps:
        return Steps(*(getattr(self, name)[mask] for name in self.__dataclass_fields__))


def _steps(rng, starts: np.ndarray, end: int) -> tuple[Steps, np.ndarray, np.ndarray]:
    """3 to 8 steps per workflow: a planner, content agents, then a reviewer or publisher.

    Returns the steps finished by `end` (the others have no log yet), and per workflow how many
    steps it plans and how many have started.
    """
    planned = rng.integers(3, 9, len(starts))
    workflow = np.repeat(np.arange(len(starts)), planned)
    first = np.r_[0, np.cumsum(planned)[:-1]]
    position = np.arange(len(workflow)) - first[workflow]
    agent, intent, risk, model = _route(rng, position, position == planned[workflow] - 1)
    latency = AGENT_LATENCY_MS[agent] * MODEL_SPEED[model] * rng.lognormal(0, 0.45, len(agent))
    latency = latency.astype(np.int64)
    gap = _gaps(rng, starts, first, planned, end)
    elapsed = np.cumsum(gap + latency)
    before = elapsed - latency - (elapsed - gap - latency)[first][workflow]  # since the workflow started
    start = starts[workflow] + before.astype(np.int64)
    routed = start - (gap * rng.uniform(0.2, 0.8, len(gap))).astype(np.int64)
    steps = Steps(workflow, agent, intent, risk, model, latency, start, routed)
    started = np.bincount(workflow[start <= end], minlength=len(starts))
    return steps.keep(start + latency <= end), planned, started


def _route(rng, position: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, ...]:
    """Agent of each step, and the router's intent, risk level and model for it."""
    agent = _choose(rng, MIDDLE_AGENTS[None, :], np.zeros(len(position), dtype=np.int64))
    agent[position == 0] = AGENTS.index("planner")
    publishes = rng.random(int(last.sum())) < 0.7
    agent[last] = np.where(publishes, AGENTS.index("publisher"), AGENTS.index("reviewer"))
    intent = _choose(rng, INTENT_BY_AGENT, agent)
    risk = _choose(rng, RISK_BY_INTENT, intent)
    # the riskier the request, the more the router prefers strong models
    preference = np.exp(0.8 * (np.arange(len(RISKS))[None, :, None] - 1.2) * (MODEL_TIER - 1)[None, None, :])
    weights = (MODEL_BY_INTENT[:, None, :] * preference).reshape(-1, len(MODELS))
    return agent, intent, risk, _choose(rng, weights, intent * len(RISKS) + risk)


def _gaps(rng, starts: np.ndarray, first: np.ndarray, planned: np.ndarray, end: int) -> np.ndarray:
    """Milliseconds each step waits before it runs: queueing, sometimes a human approval."""
    n = int(planned.sum())
    gap = rng.lognormal(np.log(1500), 0.8, n)
    approval = rng.random(n) < 0.03
    gap[approval] += rng.lognormal(np.log(20 * 60_000), 1.0, int(approval.sum()))
    # Some workflows of the last hours wait hours for an approval: still pending or running now,
    # as the status chart expects to see. (Older ones that waited that long would skew durations.)
    stalled = np.flatnonzero(rng.random(len(starts)) < 0.8 * np.exp(-(end - starts) / (12 * HOUR)))
    step = first[stalled] + (rng.random(len(stalled)) * planned[stalled]).astype(np.int64)
    gap[step] += rng.lognormal(np.log(4 * HOUR), 0.7, len(stalled))
    return gap


@dataclass
class Failures:
    """The failed steps of a chunk (a mask) and what went wrong with them."""

    mask: np.ndarray
    recovered: np.ndarray  # among the failed ones
    error_type: np.ndarray
    error_at: np.ndarray
    recovered_at: np.ndarray
    messages: list[str]


def _failures(rng, steps: Steps, incidents: list, end: int) -> Failures:
    """About 2% of steps fail, more during incidents; four in five recover seconds to minutes later."""
    p = AGENT_ERROR_RATE[steps.agent] * MODEL_ERRORS[steps.model]
    incident_type = np.full(len(p), -1)
    for which, index, start, stop, multiplier, kind in incidents:
        target = steps.model if which else steps.agent
        hit = (target == index) & (steps.start >= start) & (steps.start < stop)
        p[hit] = np.minimum(p[hit] * multiplier, 0.6)
        incident_type[hit] = kind
    mask = _systematic(rng, p, steps.agent, len(AGENTS))
    agent, model = steps.agent[mask], steps.model[mask]
    error_type = _choose(rng, ERROR_BY_AGENT, agent)
    typical = (incident_type[mask] >= 0) & (rng.random(len(agent)) < 0.8)
    error_type[typical] = incident_type[mask][typical]
    error_at = steps.start[mask] + steps.latency[mask]
    recovery = rng.lognormal(np.log(RECOVERY_MEDIAN_S[error_type]), 0.9) * 1000
    recovered_at = error_at + recovery.astype(np.int64) + 1
    recovered = _systematic(rng, np.full(len(agent), 0.8), agent, len(AGENTS)) & (recovered_at <= end)
    numbers = rng.integers(0, 1 << 30, len(agent))
    messages = [_message(*args) for args in zip(error_type.tolist(), agent.tolist(), model.tolist(),
                                                  steps.latency[mask].tolist(), numbers.tolist())]
    return Failures(mask, recovered, error_type, error_at, recovered_at, messages)


def _message(error_type: int, agent: int, model: int, latency_ms: int, number: int) -> str:
    name = ERROR_TYPES[error_type]
    n = {"rate_limit": (1 + number % 10) * 50, "invalid_output": 20 + number % 900,
         "context_length": 128_000 + number % 60_000}.get(name, number)
    return MESSAGES[name].format(agent=AGENTS[agent], model=MODELS[model], n=n,
                                 seconds=latency_ms / 1000, d=(2, 3, 4)[number % 3],
                                 field=FIELDS[number % len(FIELDS)],
                                 category=CATEGORIES[number % len(CATEGORIES)])


def _outcomes(rng, starts: np.ndarray, planned: np.ndarray, started: np.ndarray, steps: Steps,
              failed: Failures, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Each workflow's status and completed_at (-1 while pending or running)."""
    n = len(starts)
    ran = np.bincount(steps.workflow, minlength=n)
    finished = np.zeros(n, dtype=np.int64)
    np.maximum.at(finished, steps.workflow, steps.start + steps.latency)
    completed = finished + rng.lognormal(np.log(400), 0.5, n).astype(np.int64)
    status = np.array(["completed", "failed", "cancelled"])[rng.choice(3, n, p=[.88, .06, .06])]
    status[steps.workflow[failed.mask][~failed.recovered]] = "failed"
    running = (ran < planned) | (completed > end)
    status[running] = np.where(started[running] == 0, "pending", "running")
    return status, np.where(running, -1, completed)


def _write_workflows(out: Writer, first_id: int, project, status, starts, completed) -> None:
    done = completed >= 0
    out.write("workflows", [_ints(first_id + np.arange(len(starts))), _ints(project + 1), status.tolist(),
                            _stamps(starts), _nullable(len(starts), done, _stamps(completed[done]))])


def _write_steps(rng, out: Writer, first_id: int, steps: Steps, failed: Failures, timeline: Timeline) -> None:
    """agent_logs and router_logs: one router decision before each agent execution."""
    n = len(steps.agent)
    workflow_ids = _ints(first_id + steps.workflow)
    status = np.full(n, "success", dtype=object)
    status[failed.mask] = np.where(failed.recovered, "recovered", "error")
    recovered = np.zeros(n, dtype=bool)
    recovered[np.flatnonzero(failed.mask)[failed.recovered]] = True
    first_log = out.counts["agent_logs"] + 1
    out.write("agent_logs", [
        _ints(first_log + np.arange(n)), workflow_ids, _labels(AGENTS, steps.agent),
        _labels(MODELS, steps.model), status.tolist(), _ints(steps.latency),
        _nullable(n, failed.mask, _labels(ERROR_TYPES, failed.error_type)),
        _nullable(n, failed.mask, failed.messages),
        _nullable(n, failed.mask, _stamps(failed.error_at)),
        _nullable(n, recovered, _stamps(failed.recovered_at[failed.recovered])),
        _stamps(steps.start)])

    before = (CONTEXT_MEDIAN[steps.intent] * rng.lognormal(0, 0.6, n)).astype(np.int64)
    # the router keeps getting better at trimming context over the window
    improvement = 0.12 * (steps.routed - timeline.start) / (timeline.end - timeline.start)
    ratio = rng.uniform(SHRINK[steps.intent, 0], SHRINK[steps.intent, 1]) - improvement
    first_route = out.counts["router_logs"] + 1
    out.write("router_logs", [
        _ints(first_route + np.arange(n)), workflow_ids, _labels(INTENTS, steps.intent),
        _labels(MODELS, steps.model), _labels(RISKS, steps.risk), _ints(before),
        _ints((before * ratio).astype(np.int64)), _stamps(steps.routed)])


def _write_assets(rng, out: Writer, first_id: int, project, status, starts, completed, end: int) -> None:
    """About 0.8 assets per workflow, made by completed ones; recent ones mostly not reviewed yet."""
    made = rng.poisson(0.93 * (status == "completed"))
    workflow = np.repeat(np.arange(len(starts)), made)
    n = len(workflow)
    took = completed[workflow] - starts[workflow]
    created = completed[workflow] - (rng.random(n) * np.minimum(took, 3000)).astype(np.int64)
    age_days = (end - created) / DAY
    reviewed = rng.random(n) >= 0.2 + 0.7 * np.exp(-age_days / 3)
    review = rng.choice(len(REVIEWS), int(reviewed.sum()), p=REVIEW_SHARE)
    score = rng.normal(REVIEW_SCORE[review, 0], REVIEW_SCORE[review, 1])
    tenths = np.clip(np.round(score * 10), 0, 100).astype(np.int64)
    first_asset = out.counts["assets"] + 1
    out.write("assets", [
        _ints(first_asset + np.arange(n)), _ints(project[workflow] + 1), _ints(first_id + workflow),
        _labels(ASSET_TYPES, rng.choice(len(ASSET_TYPES), n, p=ASSET_SHARE)),
        _nullable(n, reviewed, _labels(REVIEWS, review)),
        _nullable(n, reviewed, _labels(SCORE_TEXT, tenths)), _stamps(created)])
