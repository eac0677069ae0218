"""The tasks. `shop.report` has a bug: it always raises (the celery-task-raises scenario sends it)."""
import time

from .celery import app


@app.task(name="shop.encode")
def encode(number):
    time.sleep(0.05)
    return number * 2


@app.task(name="shop.report")
def report(number):
    rows = {"total": number}
    return rows["average"] / number         # KeyError: the bug
