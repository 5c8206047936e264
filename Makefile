# The two commands of the README: `make bootstrap` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bootstrap test system-packages lock benchmark benchmark-instrument benchmark-seed clean

bootstrap: $(STAMP)  ## set everything up and serve Superset on :8088
	$(BIN)/sparklio-bi bootstrap

test: $(STAMP) system-packages  ## lint (ruff, sqlfluff), then the test suite (real PostgreSQL, real Superset, headless Chromium)
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint sql/
	$(BIN)/pytest $(PYTEST_PARALLEL)

# Two test sessions side by side (pytest-xdist), one test file each at a time: each has its own
# PostgreSQL, bootstrap and Superset. `make test PYTEST_PARALLEL=` (or plain `pytest`) runs one.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

# The virtual environment, installed from the lock file; redone when either file changes.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# Debian packages the tests use for real: Chromium and ChromeDriver (browser tests),
# redis-server (Redis samples, shared caches), pgbouncer (Superset's pooled connections) and
# haproxy (two web nodes behind one address), Prometheus with promtool, Alertmanager with amtool,
# node_exporter and the blackbox exporter (the monitoring tests, each on free loopback ports).
# Installed when missing, as root; otherwise the command is shown. Debian's postinst starts the
# monitoring daemons where systemd runs: they are stopped and disabled again, since the bundle
# only runs them from the tests or docker-compose.
MONITORING_PACKAGES := prometheus prometheus-alertmanager prometheus-node-exporter prometheus-blackbox-exporter \
  prometheus-redis-exporter
DEBIAN_PACKAGES := chromium chromium-driver redis-server pgbouncer haproxy $(MONITORING_PACKAGES)
system-packages:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v redis-server >/dev/null \
	  && test -x /usr/sbin/pgbouncer && test -x /usr/sbin/haproxy \
	  && command -v promtool >/dev/null && command -v amtool >/dev/null && command -v prometheus-alertmanager >/dev/null \
	  && command -v prometheus-node-exporter >/dev/null && command -v prometheus-blackbox-exporter >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null \
	    && { ! command -v systemctl >/dev/null || systemctl disable --now $(MONITORING_PACKAGES) >/dev/null 2>&1 || true; }; \
	  else echo "the tests need Debian's $(DEBIAN_PACKAGES): sudo apt-get install $(DEBIAN_PACKAGES)" >&2; exit 1; fi; }

lock:  ## re-pin constraints.txt from the current venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt.new
	{ head -3 constraints.txt; cat constraints.txt.new; } > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt && rm constraints.txt.new

benchmark: $(STAMP)  ## charts and dashboards at scale 1000 on a bundle of its own (.data-bench/): benchmarks/results.json
	$(BIN)/sparklio-bi bench --scale 1000 --runs 5

benchmark-instrument: $(STAMP)  ## sparklio-instrument's cost per request and its sink's writes: benchmarks/instrument-overhead.json
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null; \
	  else echo "the benchmark needs Debian's wrk: sudo apt-get install wrk" >&2; exit 1; fi; }
	$(BIN)/python benchmarks/instrument_overhead.py --calls 50000 --seconds 10 --rounds 3

benchmark-seed: $(STAMP)  ## seed 1M agent_logs and print time and memory
	$(BIN)/python benchmarks/seed_benchmark.py --scale 100

clean:
	-$(BIN)/sparklio-bi db stop
	rm -rf $(VENV) .data
