# examlab: `make run` sets everything up and starts the exam daemon with a demo exam; `make test` runs every test.
SHELL := /bin/sh
NODE_BIN := node_modules/.bin
EXAMLAB := node dist/cli/bin.js
TOOLBOX := build/toolbox

.PHONY: run test deps system-deps engines build toolbox images schema check-schema typecheck imports unit integration api bench bench-deps clean

# The daemon in the foreground (Ctrl-C stops it; labs keep running): API address, operator token, each candidate's SSH command.
run: deps build toolbox engines images
	$(EXAMLAB) serve --demo

test: deps build toolbox engines images typecheck imports check-schema
	NODE_OPTIONS=--experimental-vm-modules $(NODE_BIN)/jest --ci --selectProjects unit integration api browser
	NODE_OPTIONS=--experimental-vm-modules $(NODE_BIN)/jest --ci --selectProjects engines --runInBand

# Speed figures, measured side by side in one run; results in build/bench/, summarised in BENCHMARKS.md.
bench: deps build toolbox engines images bench-deps
	NODE_OPTIONS=--experimental-vm-modules $(NODE_BIN)/jest --ci --selectProjects bench --runInBand --testTimeout 1800000

# The reference tool the grading benchmark runs side by side (Debian's testinfra, paramiko backend).
bench-deps:
	@dpkg-query -W -f='$${Status}' python3-testinfra 2>/dev/null | grep -q "install ok installed" \
	  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-testinfra python3-paramiko

unit: deps
	NODE_OPTIONS=--experimental-vm-modules $(NODE_BIN)/jest --ci --selectProjects unit

api: deps build toolbox engines images
	NODE_OPTIONS=--experimental-vm-modules $(NODE_BIN)/jest --ci --selectProjects api

integration: deps build toolbox engines images
	NODE_OPTIONS=--experimental-vm-modules $(NODE_BIN)/jest --ci --selectProjects integration

# Debian packages (docker.io, debootstrap, libvirt...) and node modules, when missing. The
# packages come first: the libvirt binding is compiled by `npm ci` against libvirt-dev.
deps: system-deps node_modules/.installed

system-deps:
	./scripts/deps.sh

node_modules/.installed: package.json package-lock.json | system-deps
	npm ci --no-audit --no-fund
	touch $@

# dockerd and libvirtd; the KVM probe (examlab vm accel) decides what libvirtd may see.
engines: deps build
	./scripts/engines.sh

build: node_modules/.installed
	$(NODE_BIN)/tsc -p tsconfig.json
	node scripts/build-web.mjs

typecheck: node_modules/.installed
	$(NODE_BIN)/tsc -p tsconfig.test.json
	$(NODE_BIN)/tsc -p tsconfig.web.json

# The import rule (.dependency-cruiser.cjs, docs/architecture.md): layers, no cycles, front doors.
imports: node_modules/.installed
	$(NODE_BIN)/depcruise src --config .dependency-cruiser.cjs

# The grader's own tool: the static examlab-probe (a read-only volume in containers, uploaded to VMs).
toolbox: $(TOOLBOX)/examlab-probe

$(TOOLBOX)/examlab-probe: images/toolbox/examlab-probe.c
	mkdir -p $(TOOLBOX)
	gcc -static -Os -Wall -Wextra -Wno-format-truncation -o $@ $<

# Lab images: only those whose definition changed are rebuilt (tags carry a content hash).
images: build engines
	$(EXAMLAB) images build
	./scripts/engines.sh

schema: build
	$(EXAMLAB) scenario schema > schema/scenario.schema.json

check-schema: build
	$(EXAMLAB) scenario schema | diff -u schema/scenario.schema.json - \
	  || { echo "schema/scenario.schema.json is out of date: run make schema" >&2; exit 1; }

clean:
	rm -rf dist build
