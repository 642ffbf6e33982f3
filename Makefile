# Two commands on a machine with Python 3.11 and make:  `make run`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
# Byte-compiled at install: machines that set PYTHONDONTWRITEBYTECODE would otherwise compile every library on every
# start (Great Expectations alone: 3 s of each process that validates).
export UV_COMPILE_BYTECODE := 1

.PHONY: setup run test serve bench bench-flows lock clean

setup: .venv/.synced

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The environment comes from uv.lock exactly (--frozen): a fresh machine gets the versions that were tested.
.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# After changing dependencies in pyproject.toml: the lock, and its export for installing with pip alone
# (tests/test_lock.py fails when requirements.txt and uv.lock disagree).
lock: | $(UV)
	$(UV) lock
	$(UV) export --frozen --format requirements.txt --no-emit-project > requirements.txt

# Usage logs are pseudonymised with a key from DEMAND_MONITOR_PSEUDONYM_KEY. Production sets it (or a Prefect Secret
# block); for the sample run on a fresh machine a random machine-local key is created once, outside the repository.
KEY_FILE := var/secrets/pseudonym.key
WITH_KEY = DEMAND_MONITOR_PSEUDONYM_KEY="$${DEMAND_MONITOR_PSEUDONYM_KEY:-$$(cat $(KEY_FILE))}"

$(KEY_FILE):
	@mkdir -p $(dir $@)
	@umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_hex(32))" > $@
	@echo "created a machine-local pseudonymisation key for the sample run: $@"

run: setup $(KEY_FILE)
	$(WITH_KEY) .venv/bin/demand-monitor run --config config/pipeline.toml

# Local Prefect server on 127.0.0.1:4200, the nightly and ingest-usage-log deployments, the inbox watcher.
serve: setup $(KEY_FILE)
	$(WITH_KEY) .venv/bin/python -m flows.serve_local --config config/pipeline.toml

# Benchmarks (targets and results: BENCHMARKS.md); SIZE = 10k, 100k, 1M, 10M, 100M; RUNS of each compared stage,
# the fastest counts (RUNS=1 halves a 100M run)
SIZE ?= 1M
RUNS ?= 2
bench: setup
	.venv/bin/python -m benchmarks.run --size $(SIZE) --runs $(RUNS)

bench-flows: setup $(KEY_FILE)
	$(WITH_KEY) .venv/bin/python -m benchmarks.flow_latency idle
	$(WITH_KEY) .venv/bin/python -m benchmarks.flow_latency landing --rows 100000

test: setup
	.venv/bin/python -m pytest

clean:
	rm -rf var .venv .tools
