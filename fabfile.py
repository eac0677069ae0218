"""`fab` in the checkout: the same tasks as the installed `fleet-audit` (auditor/cli.py), plus the
sandbox's. `fab --list` shows them; `fab --help TASK` explains each.

Exit codes: as the installed command's (auditor/errors.py, `fab --help` and docs/usage.md).
"""
from auditor.cli import namespace
from sandbox.tasks import collection as sandbox_tasks

ns = namespace()
ns.add_collection(sandbox_tasks)
