"""Issue 16: more than one web node. Two `serve` processes of one install on two ports, with one
Redis (data cache, login rate counters), behind Debian's HAProxy on loopback (round robin): every
chart answers through the proxy, a login on one node is valid on the other, a result one node
cached is a hit on the other, and the login limit counts the posts to both."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import requests

from sparklio_bi.quality import reference
from tests.conftest import (
    ADMIN_PASSWORD,
    TokenSession,
    chart_ids,
    form_login,
    free_port,
    running_redis,
    start_server,
    wait_for_health,
)

LOGIN_LIMIT = 20  # login posts an hour (a window no test run crosses) per client address, these nodes only

HAPROXY_CONFIG = """global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend web
    bind 127.0.0.1:{port}
    default_backend superset
backend superset
    balance roundrobin
    option httpchk GET /health
{servers}
"""


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)


pytestmark = pytest.mark.skipif(haproxy_binary() is None, reason="make test installs Debian's haproxy")


@pytest.fixture(scope="module")
def nodes(bootstrapped, tmp_path_factory):
    """(proxy base URL, [node base URLs], Redis client), the two nodes sharing one Redis."""
    folder = tmp_path_factory.mktemp("web-nodes")
    with running_redis(folder) as (redis_url, client):
        env = dict(os.environ, REDIS_URL=redis_url, SUPERSET_AUTH_RATE_LIMIT=f"{LOGIN_LIMIT} per hour")
        # node a runs Celery's worker and beat, node b none (one beat per deployment)
        started = [start_server("--collect-interval", "0", *([] if name == "a" else ["--no-celery"]),
                                log_name=f"node-{name}.log", env=env) for name in "ab"]
        bases = [base for _, base in started]
        port = free_port()
        servers = "\n".join(f"    server node{i} {base.split('//')[1]} check inter 2s" for i, base in enumerate(bases))
        config = folder / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers))
        proxy = subprocess.Popen([haproxy_binary(), "-f", str(config), "-db"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for_health(base, proxy, 30, "HAProxy", tick=0.3)
            yield base, bases, client
        finally:
            proxy.terminate()
            for proc, _ in started:
                proc.terminate()
            for proc, _ in started:
                proc.wait(30)


def test_every_chart_answers_through_the_proxy_from_both_nodes(nodes):
    base, bases, _ = nodes
    api = TokenSession(base, "admin", ADMIN_PASSWORD)
    ids = chart_ids(api)
    assert len(ids) == len(reference.CHARTS)
    for name, chart in sorted(ids.items()):
        for _ in range(2):  # round robin: one request to each node
            response = api.get(f"{base}/api/v1/chart/{chart}/data/?force=true", timeout=60)
            assert response.status_code == 200, f"{name}: {response.text[:300]}"
            assert response.json()["result"][0]["status"] == "success", name


def test_a_login_on_one_node_is_valid_on_the_other(nodes):
    _, (first, second), _ = nodes
    browser = form_login(first, "admin", ADMIN_PASSWORD)  # the session cookie of a form login
    answer = requests.get(f"{second}/api/v1/me/", cookies=browser.cookies, timeout=30)
    assert answer.status_code == 200 and answer.json()["result"]["username"] == "admin"
    token = TokenSession(first, "admin", ADMIN_PASSWORD)  # a bearer token from the REST login
    answer = requests.get(f"{second}/api/v1/me/", headers=token.headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["result"]["username"] == "admin"


def test_a_result_cached_by_one_node_is_a_hit_on_the_other(nodes):
    _, (first, second), client = nodes
    api_first, api_second = (TokenSession(base, "admin", ADMIN_PASSWORD) for base in (first, second))
    chart = chart_ids(api_first)["Intent distribution"]
    client.flushdb()  # nothing cached: what follows is made by the first node alone
    made = api_first.get(f"{first}/api/v1/chart/{chart}/data/?force=true", timeout=60).json()["result"][0]
    assert not made["is_cached"]  # forced: computed now (Superset says None)
    assert client.dbsize() > 0  # the result went to Redis
    hit = api_second.get(f"{second}/api/v1/chart/{chart}/data/", timeout=60).json()["result"][0]
    assert hit["is_cached"] is True and hit["data"] == made["data"]


def test_the_login_limit_counts_the_posts_to_both_nodes(nodes):
    """Bad logins alternately to each node: with one Redis the limit is reached after LOGIN_LIMIT
    posts in all, where counters of each node's own would allow twice as many."""
    _, bases, _ = nodes
    refused_at = None
    for attempt in range(1, 2 * LOGIN_LIMIT + 1):
        answer = requests.post(f"{bases[attempt % 2]}/api/v1/security/login", timeout=30,
                               json={"username": "admin", "password": "wrong", "provider": "db"})
        if answer.status_code == 429:
            refused_at = attempt
            break
    assert refused_at is not None and refused_at <= LOGIN_LIMIT + 1, refused_at
