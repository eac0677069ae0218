"""The web process: every SHOP_INTERVAL_SECONDS it calls encode.delay() (and report.delay() when
SHOP_SEND_REPORTS=1). Like a real web app it logs nothing about the sends themselves."""
import itertools
import logging
import os
import sys
import time

from shop.tasks import encode, report

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
log = logging.getLogger("shop.web")

INTERVAL = float(os.environ.get("SHOP_INTERVAL_SECONDS", "3"))


def main():
    log.info("shop web started")
    for number in itertools.count(1):
        try:
            encode.delay(number)
            if os.environ.get("SHOP_SEND_REPORTS") == "1":
                report.delay(number)
        except Exception as error:      # the broker refused: a web app logs it and serves the request anyway
            log.error("could not queue a job: %s", error)
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main()
