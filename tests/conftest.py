"""Every test's audits are recorded in a history of the test run's own (in-process and in the
`fab` processes they start), never in the operator's ~/.local/state."""
import os
import tempfile

os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="fleet-audit-test-state-")
