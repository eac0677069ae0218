"""Fixtures of the fault matrix; the helpers live in faultkit.py (a conftest module's name is
shared by every test folder, so nothing imports from here)."""
from faultkit import fab, fab_process, fleet_audit, inventory  # noqa: F401  (fixtures)
