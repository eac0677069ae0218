"""Fleet auditor: the SQS worker runbook, run on every host of a fleet over SSH.

Data flows one way: inventory -> collect over transports (one agent run per host) -> facts ->
diagnosis -> renderers. Each stage lives in the module or package of the same name.
"""
__version__ = "0.1.0"
USER_AGENT = "fleet-auditor/" + __version__
