# AutoCRM developer tasks. `make run` starts everything locally; `make test` is what CI runs.
# Only the system python3 and npm are needed; everything else lands in .venv/ and node_modules/.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
VENV_STAMP  := $(VENV)/.installed
NPM_STAMP   := node_modules/.installed
SWAGGER_DIR := web/static/vendor/swagger-ui
SWAGGER_SRC := node_modules/swagger-ui-dist
SWAGGER_FILES := swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js LICENSE NOTICE
SWAGGER_ASSETS := $(addprefix $(SWAGGER_DIR)/,$(SWAGGER_FILES))
# Web page assets, copied from node_modules (pinned by package-lock.json) into web/static/vendor.
VENDOR_DIR  := web/static/vendor
VENDOR_ASSETS := $(VENDOR_DIR)/pico/pico.min.css $(VENDOR_DIR)/socket.io/socket.io.min.js \
	$(VENDOR_DIR)/chart.js/chart.umd.min.js

COV_ARGS := --cov=autocrm --cov=workflows --cov=workers --cov=api --cov-branch --cov-report=term
PYTEST_ARGS ?=

# The second suite run (CI): PostgreSQL and the machine's Redis instead of SQLite + embedded Redis.
TEST_PG_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
TEST_PG_REDIS_URL    ?= redis://127.0.0.1:6379/13

.PHONY: venv run test test-pg test-browser lint format migrate clean distclean

venv: $(VENV_STAMP) $(SWAGGER_ASSETS) $(VENDOR_ASSETS)

# Reinstalls only when pyproject.toml changes.
$(VENV_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

# --ignore-scripts: the assets need no build step, and it skips install-time telemetry hooks.
$(NPM_STAMP): package.json $(wildcard package-lock.json)
	if [ -f package-lock.json ]; then \
		npm ci --ignore-scripts --no-audit --no-fund; \
	else \
		npm install --ignore-scripts --no-audit --no-fund; \
	fi
	touch $@

$(SWAGGER_DIR)/%: $(NPM_STAMP)
	mkdir -p $(SWAGGER_DIR)
	cp $(SWAGGER_SRC)/$* $@

$(VENDOR_DIR)/pico/pico.min.css: $(NPM_STAMP)
	mkdir -p $(@D)
	cp node_modules/@picocss/pico/css/pico.min.css node_modules/@picocss/pico/LICENSE.md $(@D)/

$(VENDOR_DIR)/socket.io/socket.io.min.js: $(NPM_STAMP)
	mkdir -p $(@D)
	cp node_modules/socket.io-client/dist/socket.io.min.js node_modules/socket.io-client/LICENSE $(@D)/

# The UMD build bundles @kurkle/color (MIT), so its licence is copied alongside Chart.js's.
$(VENDOR_DIR)/chart.js/chart.umd.min.js: $(NPM_STAMP)
	mkdir -p $(@D)
	cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/LICENSE.md $(@D)/
	cp node_modules/@kurkle/color/LICENSE.md $(@D)/LICENSE-kurkle-color.md

# Web server, one Celery worker on every queue (celery, escalations, beat: celeryconfig.py) and beat.
run: venv
	$(BIN)/python -m autocrm.devserver

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .

test: lint
	$(BIN)/pytest $(COV_ARGS) $(PYTEST_ARGS)

# The whole suite again on PostgreSQL + a real Redis server (no lint: `make test` did that).
test-pg: venv
	AUTOCRM_TEST_DATABASE_URL='$(TEST_PG_DATABASE_URL)' \
	AUTOCRM_TEST_REDIS_URL='$(TEST_PG_REDIS_URL)' \
	$(BIN)/pytest $(COV_ARGS) $(PYTEST_ARGS)

# Only the browser tests (they also run inside `test` and `test-pg`): Playwright driving
# Debian's Chromium (/usr/bin/chromium, `apt-get install chromium`) against a real server stack.
test-browser: venv
	$(BIN)/pytest tests/browser $(PYTEST_ARGS)

migrate: venv
	$(BIN)/flask --app wsgi db upgrade

# Caches, coverage data and copied assets; `distclean` also drops the installed dependencies.
clean:
	rm -rf web/static/vendor .coverage .coverage.* .pytest_cache .ruff_cache test-artifacts
	find . -path ./.git -prune -o -path ./$(VENV) -prune -o -path ./node_modules -prune \
		-o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules *.egg-info
