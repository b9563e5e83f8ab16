# Filestore: `make run` starts the whole service, `make test` runs the test suite.
# Both create .venv and install the pinned dependencies (requirements.lock) first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-deps test-js-deps test-browser-deps vendor lint lock bench clean screenshots

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/filestore serve

test: install test-deps
	$(BIN)/pytest

# clamd for tests/files/test_virus_scan.py: Debian's clamav-daemon, installed only when clamd is
# missing and we are root with apt-get (CI containers); otherwise nothing happens and those tests
# skip, saying why. Never fails the test run. The tests start a clamd of their own with their
# own config and signature file; the package's system service is not used.
test-deps:
	@if command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "test-deps: installing clamav-daemon for the virus-scanning tests"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends clamav-daemon >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null 2>&1 \
		     && apt-get install -y -qq --no-install-recommends clamav-daemon >/dev/null 2>&1; } \
		|| echo "test-deps: could not install clamav-daemon; the virus-scanning tests will skip"; \
	else \
		echo "test-deps: no clamd, and not root with apt-get to install it; the virus-scanning tests will skip"; \
	fi
	@$(MAKE) --no-print-directory test-js-deps
	@$(MAKE) --no-print-directory test-browser-deps

# Debian's chromium for the console's browser tests (tests/console/), driven by Playwright with
# executable_path (Playwright never downloads a browser here). Installed like clamd: only when
# missing and we are root with apt-get; otherwise those tests skip, saying why.
test-browser-deps:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "test-deps: installing chromium for the console's browser tests"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null 2>&1 \
		     && apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } \
		|| echo "test-deps: could not install chromium; the console's browser tests will skip"; \
	else \
		echo "test-deps: no chromium, and not root with apt-get to install it; the console's browser tests will skip"; \
	fi

# tus-js-client for tests/files/tus/test_js_client.py, pinned in tests/js/package-lock.json.
# Without npm nothing happens and those tests skip, saying why. Never fails the test run.
JS_STAMP := tests/js/node_modules/.installed
test-js-deps:
	@if [ -f $(JS_STAMP) ] && [ $(JS_STAMP) -nt tests/js/package-lock.json ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
		(cd tests/js && npm ci --no-audit --no-fund --loglevel=error >/dev/null) && touch $(JS_STAMP) \
		|| echo "test-deps: npm ci failed in tests/js; the tus-js-client tests will skip"; \
	else \
		echo "test-deps: no npm; the tus-js-client tests will skip"; \
	fi

# The console's third-party files (Uppy's bundle and CSS, uPlot for the Overview's charts),
# pinned in console/vendor/package-lock.json,
# copied into the package with every bundled package's licence. Run after changing the pin;
# the copies are committed, so installing Filestore never needs npm.
VENDOR_DIR := src/filestore/console/static/vendor
vendor:
	cd console/vendor && npm ci --no-audit --no-fund --loglevel=error
	cp console/vendor/node_modules/uppy/dist/uppy.min.js console/vendor/node_modules/uppy/dist/uppy.min.css $(VENDOR_DIR)/
	sed -i '/^\/\/# sourceMappingURL=/d' $(VENDOR_DIR)/uppy.min.js
	cp console/vendor/node_modules/uplot/dist/uPlot.iife.min.js console/vendor/node_modules/uplot/dist/uPlot.min.css $(VENDOR_DIR)/
	cd console/vendor && node licences.mjs > ../../$(VENDOR_DIR)/LICENSES.txt

# The console's screenshots in docs/console/ (needs chromium: `make test-deps`).
screenshots: install test-deps
	FILESTORE_SCREENSHOTS=docs $(BIN)/pytest tests/console/test_screenshots.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11

bench: install
	$(BIN)/python bench/upload.py

clean:
	rm -rf $(VENV) .filestore
