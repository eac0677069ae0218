"""A small Celery-on-SQS app for the sandbox's second stack: a web process that calls .delay(),
workers that consume. Its settings come from the environment, as a real deployment's do."""
