# Two commands for a newcomer:
#   make demo   set up .venv, build a small archive from package photos, index it, answer a query
#   make test   set up .venv, build the docs site (broken links fail) and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mien-installed

.PHONY: demo serve test docs setup clean system-deps buf ffmpeg

# $(call apt_tool,CHECK,PACKAGE,WHAT FOR,WHAT IS SKIPPED WITHOUT IT): Debian's PACKAGE when
# the shell test CHECK fails and we may install it (root with apt-get); otherwise a note
define apt_tool
	@if $(1); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's $(2) for $(3)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; } \
		|| echo "warning: could not install $(2); $(4)"; \
	else \
		echo "note: $(2) not found (Debian/Ubuntu: apt-get install $(2)); $(4)"; \
	fi
endef

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py mien/engine/faces/bundled.py $(wildcard mien/native/*.cc mien/native/*.h)
	@$(MAKE) --no-print-directory system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(VENV)/bin/mien models fetch
	touch $(STAMP)

# gRPC C++ for the native server front and client channel (mien/native). Installed from
# Debian's packages when missing and we may (root with apt-get); otherwise the
# package builds without it and `mien serve` runs grpcio's Python server.
system-deps:
	@if pkg-config --exists grpc++ 2>/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing gRPC C++ (libgrpc++-dev) for the native server front and client channel"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgrpc++-dev pkg-config >/dev/null; } \
		|| echo "warning: could not install libgrpc++-dev; mien serve will use the pure-Python server"; \
	else \
		echo "note: gRPC C++ not found (Debian/Ubuntu: apt-get install libgrpc++-dev);" \
		     "mien serve will use the pure-Python server"; \
	fi
	@# Headless Chromium for the web app's browser tests (tests/test_web_app.py drives it with
	@# Playwright through its executable path; nothing downloads a browser)
	$(call apt_tool,command -v chromium >/dev/null || command -v chromium-browser >/dev/null,chromium,the web app's browser tests,the web app's browser tests (tests/test_web_app.py) will be skipped)

demo: $(STAMP)
	$(VENV)/bin/mien demo --workdir demo-out

# the web app over the demo store (make demo first): http://127.0.0.1:8080/
serve: $(STAMP)
	@test -d demo-out/store || { echo "no demo store yet: run make demo first"; exit 1; }
	$(VENV)/bin/mien serve --store demo-out/store --http 8080 --allow-root "$(CURDIR)/demo-out/archive"

test: $(STAMP) buf ffmpeg docs
	$(PY) -m pytest -q

# the documentation site (mkdocs.yml, pages in docs/) into build/site, strictly: a broken link,
# a missing anchor or a page left out of the nav fails the build; open build/site/index.html
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# Debian's ffmpeg for the video tests that need containers only it writes (joined MPEG-TS,
# audio-only MP4, H.264/VP8 cut in half: tests/test_video_bad_input.py); skipped with a note
# when it cannot be installed
ffmpeg:
	$(call apt_tool,command -v ffmpeg >/dev/null,ffmpeg,the bad-video tests,tests/test_video_bad_input.py's ffmpeg test will be skipped)

# buf (lint and breaking-change checks of proto/, tests/test_proto_buf.py) from npm's
# @bufbuild/buf into .buf/; skipped with a note when npm is missing (the tests then skip)
BUF := .buf/node_modules/.bin/buf
buf: $(BUF)

$(BUF):
	@if ! command -v npm >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's npm for buf"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; } || true; \
	fi
	@if command -v npm >/dev/null; then \
		npm install --silent --no-audit --no-fund --prefix .buf @bufbuild/buf@1.75.0 >/dev/null \
		|| echo "warning: could not install buf; tests/test_proto_buf.py will be skipped"; \
	else \
		echo "note: npm not found (Debian/Ubuntu: apt-get install npm); tests/test_proto_buf.py will be skipped"; \
	fi

clean:
	rm -rf demo-out .pytest_cache build/site
