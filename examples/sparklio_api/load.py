"""A small load generator for the example app (standard library only): a Sparklio-like mix of requests
over keep-alive connections, a few of them failing, so both dashboards fill.

    python examples/sparklio_api/load.py --url http://127.0.0.1:8000 --seconds 60 --threads 4
"""
from __future__ import annotations

import argparse
import http.client
import random
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

# (weight, method, path): mostly reads, some agent runs and workflows, a few errors and unknown paths.
MIX = [
    (50, "GET", "/items/{n}"),
    (20, "GET", "/projects/{n}"),
    (2, "GET", "/projects/0"),
    (10, "POST", "/agents/copywriter/execute"),
    (5, "POST", "/agents/designer/execute?seconds=0.05"),
    (1, "POST", "/agents/copywriter/execute?crash=true"),
    (4, "POST", "/workflows/{n}/run"),
    (1, "POST", "/workflows/{n}/run?fail=true"),
    (3, "GET", "/admin/brands/{n}"),
    (2, "GET", "/no/such/page/{n}"),
]


def requests_of(rng: random.Random):
    """An endless stream of (method, path) drawn from MIX."""
    weights = [weight for weight, _, _ in MIX]
    while True:
        _, method, path = rng.choices(MIX, weights)[0]
        yield method, path.replace("{n}", str(rng.randint(1, 100_000)))


def worker(url: str, deadline: float, statuses: Counter, lock: threading.Lock, seed: int) -> None:
    """Send requests over one keep-alive connection until the deadline, counting the status codes seen."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    seen = Counter()
    for method, path in requests_of(random.Random(seed)):
        if time.monotonic() >= deadline:
            break
        try:
            connection.request(method, path)
            response = connection.getresponse()
            response.read()
            seen[response.status] += 1
        except (OSError, http.client.HTTPException):
            # the server closes a connection after an exception in the app: that request was not sent
            seen["reconnected"] += 1
            connection.close()
    with lock:
        statuses.update(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    statuses, lock = Counter(), threading.Lock()
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=worker, args=(args.url, deadline, statuses, lock, seed))
               for seed in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(statuses.values())
    print(f"{total} requests in {args.seconds:.0f} s ({total / args.seconds:.0f}/s):",
          ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items(), key=str)))


if __name__ == "__main__":
    main()
