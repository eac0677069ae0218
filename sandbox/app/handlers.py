"""The jobs' own code, where the sandbox's code bugs live (so a traceback has an
application frame to point at, as the real app's would)."""
import time


def transcode(body):
    """A video job. A poisoned upload fails the way a broken source file fails ffmpeg."""
    if body.get("fail"):
        raise RuntimeError("ffmpeg exited 1: moov atom not found (video_id=%s)" % body.get("video_id"))
    time.sleep(0.05)


def parse_roster(body):
    """An Excel enrollment job. A poisoned sheet has a cell the parser cannot read; a hanging one
    never returns (a call without a timeout)."""
    if body.get("fail") == "hang":
        while True:
            time.sleep(3600)
    if body.get("fail"):
        return int(body.get("phone_column", "N/A"))
    time.sleep(0.05)
    return body.get("rows", 1)
