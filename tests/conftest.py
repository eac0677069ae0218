"""Every test's audits are recorded in a history of the test run's own (in-process and in the
`fab` processes they start), never in the operator's ~/.local/state. The table report wraps at
COLUMNS, which pytest-xdist's workers set (80): a test that needs a width sets its own."""
import os
import tempfile

os.environ.pop("COLUMNS", None)
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="fleet-audit-test-state-")
