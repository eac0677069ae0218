# The README's two commands: `make demo` and `make test`. Both set up what they
# need on a fresh Debian machine (as root: the sandbox runs Docker daemons).
PYTHON ?= python3
APT_PACKAGES = openssh-server openssh-client docker.io debootstrap iproute2 ca-certificates
# the tests also open the HTML report in a headless browser
TEST_APT_PACKAGES = chromium
SCENARIO ?= worker-wrong-region
SANDBOX_INVENTORY = $${FLEET_SANDBOX_DIR:-/var/lib/fleet-auditor-sandbox}/client/inventory.yaml

.PHONY: setup demo test bench down

setup:
	@command -v sshd >/dev/null && command -v dockerd >/dev/null && command -v debootstrap >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); }
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]'

demo: setup
	fab sandbox.up --scenario $(SCENARIO)
	@sleep 12   # let the API enqueue a few jobs, so lost ones can show
	fab audit -i $(SANDBOX_INVENTORY) || test $$? -eq 1

test: setup
	@command -v chromium >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_APT_PACKAGES); }
	$(PYTHON) -m pytest -v -p no:cacheprovider

# the fan-out benchmark: 48 sandbox hosts, the auditor against the OpenSSH floor
bench: setup
	$(PYTHON) benchmarks/fanout.py --sequential

down:
	fab sandbox.down
