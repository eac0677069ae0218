"""`fab` in the checkout: the same tasks as the installed `fleet-audit` (auditor/cli.py), plus the
sandbox's. `fab --list` shows them; `fab --help TASK` explains each.

Exit codes (stable, the README's table): 0 no error-level finding, 1 error-level findings, 2 usage or
inventory error, 3 an unexpected failure of the auditor itself, 4 report not written to --output,
130 interrupted (Ctrl-C), 141 stdout closed by its reader, 143 terminated (SIGTERM).
"""
from auditor.cli import namespace
from sandbox.tasks import collection as sandbox_tasks

ns = namespace()
ns.add_collection(sandbox_tasks)
