"""The local sandbox fleet: real sshd, dockerd and an SQS/IAM/STS API on loopback.

It lives in the checkout only (an operator's install has neither this package nor its tasks):
the README's demo and the integration tests' ground. `fleet.Sandbox().up(scenario)`, `.down()`
and `.status()` are the entry points; `tasks.py` gives them to `fab sandbox.*`.
"""
