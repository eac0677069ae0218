"""The local sandbox fleet: real sshd, dockerd and an SQS/IAM/STS API on loopback.

It is part of the product (the README demo) and the integration tests' ground.
`fleet.up(scenario)` / `fleet.down()` / `fleet.status()` are the entry points.
"""
