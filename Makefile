# The two commands of the README: `make bootstrap` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bootstrap test system-packages lock benchmark benchmark-seed clean

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
# haproxy (two web nodes behind one address). Installed when missing, as root; otherwise the
# command is shown.
DEBIAN_PACKAGES := chromium chromium-driver redis-server pgbouncer haproxy
system-packages:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v redis-server >/dev/null \
	  && test -x /usr/sbin/pgbouncer && test -x /usr/sbin/haproxy || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	  else echo "the tests need Debian's $(DEBIAN_PACKAGES): sudo apt-get install $(DEBIAN_PACKAGES)" >&2; exit 1; fi; }

lock:  ## re-pin constraints.txt from the current venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt.new
	{ head -3 constraints.txt; cat constraints.txt.new; } > constraints.txt && rm constraints.txt.new

benchmark: $(STAMP)  ## charts and dashboards at scale 1000 on a bundle of its own (.data-bench/): benchmarks/results.json
	$(BIN)/sparklio-bi bench --scale 1000 --runs 5

benchmark-seed: $(STAMP)  ## seed 1M agent_logs and print time and memory
	$(BIN)/python benchmarks/seed_benchmark.py --scale 100

clean:
	-$(BIN)/sparklio-bi db stop
	rm -rf $(VENV) .data
