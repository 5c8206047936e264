# The two commands of the README: `make bootstrap` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bootstrap test browser lock benchmark clean

bootstrap: $(STAMP)  ## set everything up and serve Superset on :8088
	$(BIN)/sparklio-bi bootstrap

test: $(STAMP) browser  ## run the test suite (real PostgreSQL, real Superset, headless Chromium)
	$(BIN)/pytest

# The virtual environment, installed from the lock file; redone when either file changes.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# Debian's Chromium and ChromeDriver for the browser tests (installed when missing, as root).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "the browser tests need Debian's chromium and chromium-driver: sudo apt-get install chromium chromium-driver" >&2; exit 1; fi; }

lock:  ## re-pin constraints.txt from the current venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt.new
	{ head -3 constraints.txt; cat constraints.txt.new; } > constraints.txt && rm constraints.txt.new

benchmark: $(STAMP)  ## seed 1M agent_logs and print time and memory
	$(BIN)/python benchmarks/seed_benchmark.py --scale 100

clean:
	-$(BIN)/sparklio-bi db stop
	rm -rf $(VENV) .data
