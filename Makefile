# Entry points. `make lab` brings up the local lab; `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Chainlit reads CI as its own --ci flag; nothing here needs it.
unexport CI

DISTROS ?= debian12 debian13 ubuntu2404
SCENARIOS ?= $(shell scripts/molecule-matrix --list)

.PHONY: help deps engine images wheelhouse thirdparty-wheelhouses lint unit molecule molecule-e2e e2e browser-test test lab lab-destroy verify troubleshoot rebuild rollback backup restore bench clean

help:
	@echo "make lab          bring up the local lab VM (a systemd container on the local Docker engine)"
	@echo "make lab-destroy  remove the lab VM and its data"
	@echo "make verify       prove from outside that chats persist in the lab (INVENTORY=... for others)"
	@echo "make troubleshoot diagnose the deployment, read-only: each finding with cause and fix"
	@echo "make rebuild      forced no-cache rebuild, zero downtime (backup, blue/green switch, verify, auto rollback)"
	@echo "make rollback     back to the release the last deploy or rebuild replaced"
	@echo "make backup       pg_dump (custom format) of the app's database, with retention"
	@echo "make restore FILE=inventory/lab/.backups/lab/chainlit-....dump   restore a dump (controller path), then verify"
	@echo "make bench        bench/rebuild_downtime on the lab: original procedure vs rebuild.yml"
	@echo "make test         every check: lint, unit tests, every Molecule scenario on every distro"
	@echo "make lint | unit | molecule [SCENARIOS='docker'] [DISTROS='debian12']"
	@echo "make e2e          browser test of chat history: make lab, pytest e2e (headless Chromium), make lab-destroy"
	@echo "make browser-test the browser test against an already running lab"

deps: $(VENV)/.installed
	@scripts/harness link

# The host's packages (apt) and the virtualenv (pip) download side by side.
$(VENV)/.installed: requirements-dev.txt
	scripts/harness host-packages & packages=$$!; \
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q --upgrade pip \
	  && $(VENV)/bin/pip install -q -r requirements-dev.txt; pip=$$?; \
	wait $$packages && [ $$pip = 0 ]
	touch $@

engine:
	scripts/harness engine

# The wheelhouse (pip on the controller, no image needed) is made while the
# images build: both mostly wait on downloads.
images: engine
	scripts/harness images & harness=$$!; \
	$(MAKE) --no-print-directory wheelhouse; wheel=$$?; \
	wait $$harness && [ $$wheel = 0 ]

# The wheelhouse of the reference app for the test images' Python (3.11):
# image builds in the lab and the tests install from it, with no index.
wheelhouse: deps
	ansible-playbook -i inventory/lab playbooks/wheelhouse.yml

# One wheelhouse for each older Chainlit release molecule/default deploys its
# third-party app on, made from the same requirements the test writes
# (.cache/wheelhouse-<release>); made once, then kept. make test makes them
# beside lint and the unit tests, off the path of the images, and does not wait
# for them: each is made under a lock (.cache/wheelhouse-<release>.lock) that
# molecule/default's test takes before it uses the wheelhouse.
THIRDPARTY_RELEASES := 2.0.603
THIRDPARTY_WHEELHOUSES := $(foreach r,$(THIRDPARTY_RELEASES),.cache/wheelhouse-$(r)/.wheelhouse.json)
thirdparty-wheelhouses: $(THIRDPARTY_WHEELHOUSES)

.cache/wheelhouse-%/.wheelhouse.json: | deps
	rm -rf .cache/thirdparty-$* && mkdir -p .cache/thirdparty-$*
	cp molecule/default/files/thirdparty-app/app.py .cache/thirdparty-$*/
	echo "chainlit==$*" >.cache/thirdparty-$*/requirements.txt
	flock .cache/wheelhouse-$*.lock ansible-playbook -i inventory/lab playbooks/wheelhouse.yml \
	  -e chainlit_app_src=$(CURDIR)/.cache/thirdparty-$* -e chainlit_app_wheelhouse=$(CURDIR)/.cache/wheelhouse-$* \
	  >.cache/wheelhouse-$*.log 2>&1 || { tail -n 30 .cache/wheelhouse-$*.log; exit 1; }

lint: deps
	ruff check .
	ruff format --check .
	yamllint -s .
	ansible-lint

# Two workers (pytest-xdist): most of the time goes to the data-layer
# contract of each supported release, one Python process each.
unit: deps
	pytest -n 2 tests

molecule: deps images thirdparty-wheelhouses
	scripts/molecule-matrix $(foreach s,$(SCENARIOS),$(s)) -- $(DISTROS)

# make test: the scenarios and the browser test share the two lanes.
molecule-e2e: deps images thirdparty-wheelhouses
	MATRIX_E2E=1 scripts/molecule-matrix $(foreach s,$(SCENARIOS),$(s)) -- $(DISTROS)

browser-test: deps
	pytest e2e -v

# One recipe line, so that the lab is removed even when the test fails.
e2e: deps images
	status=0; \
	$(MAKE) --no-print-directory lab && pytest e2e -v || status=1; \
	$(MAKE) --no-print-directory lab-destroy || status=1; \
	exit $$status

test:
	scripts/test-all

lab: deps images
	ansible-playbook -i inventory/lab playbooks/lab.yml

lab-destroy: deps
	ansible-playbook -i inventory/lab playbooks/lab.yml -e lab_state=absent

INVENTORY ?= inventory/lab
verify: deps
	ansible-playbook -i $(INVENTORY) playbooks/verify.yml

troubleshoot: deps
	ansible-playbook -i $(INVENTORY) playbooks/troubleshoot.yml

rebuild: deps
	ansible-playbook -i $(INVENTORY) playbooks/rebuild.yml

rollback: deps
	ansible-playbook -i $(INVENTORY) playbooks/rollback.yml

backup: deps
	ansible-playbook -i $(INVENTORY) playbooks/backup.yml

restore: deps
	ansible-playbook -i $(INVENTORY) playbooks/restore.yml -e backup_restore_src=$(abspath $(FILE))

bench: deps images
	python bench/rebuild_downtime

clean:
	rm -rf .cache
