"""The drawing itself: owners (users, brands, projects), then workflows with their agent steps,
router decisions, failures and assets."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sparklio_bi.warehouse.seed.profile import (
    AGENT_ERROR_RATE,
    AGENT_LATENCY_MS,
    AGENTS,
    ASSET_SHARE,
    ASSET_TYPES,
    BRAND_WORDS,
    CAMPAIGNS,
    CATEGORIES,
    CONTEXT_MEDIAN,
    DOMAINS,
    ERROR_BY_AGENT,
    ERROR_TYPES,
    FIELDS,
    FIRST_NAMES,
    INTENT_BY_AGENT,
    INTENTS,
    LAST_NAMES,
    MESSAGES,
    MIDDLE_AGENTS,
    MODEL_BY_INTENT,
    MODEL_ERRORS,
    MODEL_SPEED,
    MODEL_TIER,
    MODELS,
    RECOVERY_MEDIAN_S,
    REVIEW_SCORE,
    REVIEW_SHARE,
    REVIEWS,
    RISK_BY_INTENT,
    RISKS,
    SCORE_TEXT,
    SHRINK,
    Sizes,
)
from sparklio_bi.warehouse.seed.timeline import DAY, HOUR, WINDOW_DAYS, Timeline, Writer, ints, labels, nullable, stamps

CHUNK_WORKFLOWS = 25_000  # ~140k agent_logs per chunk


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


def write_owners(rng, timeline: Timeline, size: Sizes, out: Writer) -> tuple[np.ndarray, np.ndarray]:
    """Users, brands and projects; returns the projects' creation times and popularity."""
    users, brands = _write_users(rng, timeline, size.users, out), _write_brands(rng, timeline, size.brands, out)
    projects = timeline.events(rng, size.projects)
    user = _pick_earlier(rng, users, _zipf_weights(rng, size.users, 1.1), projects)
    brand = _pick_earlier(rng, brands, _zipf_weights(rng, size.brands, 1.0), projects)
    ids = np.arange(1, size.projects + 1)
    campaign = rng.integers(len(CAMPAIGNS), size=size.projects)
    names = [f"{CAMPAIGNS[c]} #{i}" for c, i in zip(campaign.tolist(), ids.tolist())]
    out.expected["projects"] = size.projects
    out.write("projects", [ints(ids), ints(brand + 1), ints(user + 1), names, stamps(projects)])
    return projects, _zipf_weights(rng, size.projects, 0.8)


def _write_users(rng, timeline: Timeline, n: int, out: Writer) -> np.ndarray:
    """Signups, more of them as the studio grows; returns their times."""
    signups = timeline.events(rng, n)
    ids = np.arange(1, n + 1)
    first, last, domain = (rng.integers(len(words), size=n) for words in (FIRST_NAMES, LAST_NAMES, DOMAINS))
    emails = [f"{FIRST_NAMES[f]}.{LAST_NAMES[s]}{i}@{DOMAINS[d]}"  # the id keeps them unique
              for f, s, i, d in zip(first.tolist(), last.tolist(), ids.tolist(), domain.tolist())]
    out.expected["users"] = n
    out.write("users", [ints(ids), emails, stamps(signups)])
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
    out.write("brands", [ints(np.arange(1, n + 1)), names, stamps(created)])
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


def write_activity(rng, timeline: Timeline, size: Sizes, projects: tuple, out: Writer) -> None:
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
    out.write("workflows", [ints(first_id + np.arange(len(starts))), ints(project + 1), status.tolist(),
                            stamps(starts), nullable(len(starts), done, stamps(completed[done]))])


def _write_steps(rng, out: Writer, first_id: int, steps: Steps, failed: Failures, timeline: Timeline) -> None:
    """agent_logs and router_logs: one router decision before each agent execution."""
    n = len(steps.agent)
    workflow_ids = ints(first_id + steps.workflow)
    status = np.full(n, "success", dtype=object)
    status[failed.mask] = np.where(failed.recovered, "recovered", "error")
    recovered = np.zeros(n, dtype=bool)
    recovered[np.flatnonzero(failed.mask)[failed.recovered]] = True
    first_log = out.counts["agent_logs"] + 1
    out.write("agent_logs", [
        ints(first_log + np.arange(n)), workflow_ids, labels(AGENTS, steps.agent),
        labels(MODELS, steps.model), status.tolist(), ints(steps.latency),
        nullable(n, failed.mask, labels(ERROR_TYPES, failed.error_type)),
        nullable(n, failed.mask, failed.messages),
        nullable(n, failed.mask, stamps(failed.error_at)),
        nullable(n, recovered, stamps(failed.recovered_at[failed.recovered])),
        stamps(steps.start)])

    before = (CONTEXT_MEDIAN[steps.intent] * rng.lognormal(0, 0.6, n)).astype(np.int64)
    # the router keeps getting better at trimming context over the window
    improvement = 0.12 * (steps.routed - timeline.start) / (timeline.end - timeline.start)
    ratio = rng.uniform(SHRINK[steps.intent, 0], SHRINK[steps.intent, 1]) - improvement
    first_route = out.counts["router_logs"] + 1
    out.write("router_logs", [
        ints(first_route + np.arange(n)), workflow_ids, labels(INTENTS, steps.intent),
        labels(MODELS, steps.model), labels(RISKS, steps.risk), ints(before),
        ints((before * ratio).astype(np.int64)), stamps(steps.routed)])


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
        ints(first_asset + np.arange(n)), ints(project[workflow] + 1), ints(first_id + workflow),
        labels(ASSET_TYPES, rng.choice(len(ASSET_TYPES), n, p=ASSET_SHARE)),
        nullable(n, reviewed, labels(REVIEWS, review)),
        nullable(n, reviewed, labels(SCORE_TEXT, tenths)), stamps(created)])
