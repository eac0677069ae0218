"""A workload's logs in the window: read from its source (docker logs, a file and its rotations,
journald), bounded, then read once for the markers and for what the code did: the exceptions it
raised, how each run of the process ended, and the jobs it received and never finished."""
import calendar
import glob
import gzip
import os
import re
import time

try:
    from .runner import NewestLines, run, stream_command, unread
    from .wire import LogSourceKind, MarkerKind, Unread
except ImportError:  # shipped: the sources are concatenated (see agent.program)
    pass

MAX_JOBS = 100
MAX_GROUPS = 20             # exception groups and exits kept per workload
MAX_MINUTES = 240           # per-minute counts kept per marker
STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?")
# what each log source puts before the program's own line
SOURCE_PREFIX = {LogSourceKind.DOCKER: re.compile(r"^\d{4}-\d{2}-\d{2}T[\d:.]+Z "),
                 LogSourceKind.JOURNALD: re.compile(r"^\S+ \S+ [^:\s]+: ")}
TRACEBACK = "Traceback (most recent call last):"
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
FRAME = re.compile(r'^\s+File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
LIBRARY_PATH = re.compile(r"(site-packages|dist-packages|/lib/python\d[\d.]*/|^<frozen)")
KMS_DENIED = re.compile(r"KMS\.AccessDeniedException|KmsAccessDenied\w*|KMS\.KMSAccessDenied\w*")
KMS_KEY = re.compile(r"arn:aws:kms:[\w-]+:\d{12}:(?:key|alias)/[\w/-]+|alias/[\w/-]+")
KMS_ACTION = re.compile(r"\bkms:[A-Z]\w*")    # actions are CamelCase; key ARNs are not


def stamp_of(line):
    """(sortable UTC text, epoch seconds) of a line's leading timestamp, or (None, None).
    Docker's RFC 3339, journald's short-iso and Python logging's asctime all match."""
    match = STAMP.search(line, 0, 48)
    if not match:
        return None, None
    day, clock, fraction = match.group(1), match.group(2), (match.group(3) or "0")[:6].ljust(6, "0")
    try:
        epoch = calendar.timegm(time.strptime(day + "T" + clock, "%Y-%m-%dT%H:%M:%S")) + int(fraction) / 1e6
    except ValueError:
        return None, None
    return "%sT%s.%sZ" % (day, clock, fraction), epoch


# -- reading ----------------------------------------------------------------------------

def docker_log_lines(name, seconds, max_bytes, timeout):
    code, lines = stream_command(["docker", "logs", "--timestamps", "--since", "%ds" % seconds, "--tail", "50000",
                                  name], NewestLines(max_bytes), timeout)
    if code != 0:
        return unread(code, "", "\n".join(list(lines.lines)[-5:])), None
    return None, lines


# what journalctl says (without -q) when it shows nothing because it cannot: the lines are unknown
JOURNAL_DENIED = ("insufficient permissions", "not seeing messages from other users", "permission denied")
JOURNAL_ABSENT = ("no journal files were found", "has not been booted with systemd")


def journald_log_lines(unit, seconds, max_bytes, timeout):
    """The unit's lines in the window. `-q` keeps journalctl's notices out of the lines, but it
    also hides why a journal shows nothing (a user who may not read it, no journal at all): an
    empty window is asked again without `-q`, so silence is never mistaken for a quiet worker."""
    code, lines = stream_command(["journalctl", "-u", unit, "--since", "-%ds" % seconds,
                                  "-o", "short-iso", "--no-pager", "-q"], NewestLines(max_bytes), timeout)
    if code != 0:
        return unread(code, "", "\n".join(list(lines.lines)[-5:])), None
    if not lines.lines:
        code, out, err = run(["journalctl", "-u", unit, "-n", "1", "-o", "short-iso", "--no-pager"],
                             timeout=min(timeout, 10))
        said = (err or "").strip()
        if any(words in said.lower() for words in JOURNAL_DENIED):
            return {"read": False, "reason": Unread.PERMISSION_DENIED, "error": said[-300:]}, None
        if any(words in said.lower() for words in JOURNAL_ABSENT):
            return {"read": False, "reason": Unread.NOT_FOUND, "error": said[-300:]}, None
    return None, lines


def file_log_lines(pattern, seconds, max_bytes):
    """A log file and its rotations (`PATH`, `PATH.1`, ..., `.gz` too), modified within the
    window; the newest max_bytes of them, newest file last so its lines win."""
    since = time.time() - seconds
    try:
        paths = [p for p in glob.glob(pattern) + glob.glob(pattern + ".*") if os.path.isfile(p)]
        dated = sorted(((os.path.getmtime(p), p) for p in set(paths)), reverse=True)
    except OSError as error:
        return {"read": False, "reason": Unread.FAILED, "error": str(error)}, None
    chosen, budget = [], max_bytes
    for mtime, path in dated:
        if mtime < since or budget <= 0:
            break
        chosen.append(path)
        budget -= os.path.getsize(path)
    if not dated:
        return {"read": False, "reason": Unread.NOT_FOUND, "error": "no file matches %s" % pattern}, None
    lines = NewestLines(max_bytes)
    for path in reversed(chosen):
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rb") as handle:
                    lines.feed(handle)
            else:
                with open(path, "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    if size > max_bytes:        # only the tail can survive: skip the rest unread
                        handle.seek(size - max_bytes)
                        handle.readline()
                        lines.dropped = True
                    lines.feed(handle)
        except OSError as error:
            reason = Unread.PERMISSION_DENIED if error.errno in (13, 1) else Unread.FAILED
            return {"read": False, "reason": reason, "error": "%s: %s" % (path, error.strerror)}, None
    return None, lines


def read_logs(workload, seconds, max_bytes, timeout):
    """(unread reading or None, NewestLines) from the workload's log source."""
    source = workload.source
    if source.kind == LogSourceKind.FILE:
        return file_log_lines(source.path, seconds, max_bytes)
    if source.kind == LogSourceKind.JOURNALD:
        return journald_log_lines(source.unit, seconds, max_bytes, timeout)
    return docker_log_lines(workload.name, seconds, max_bytes, timeout)


# -- what the code did ----------------------------------------------------------------------

def innermost_app_frame(frames):
    """The deepest frame in the app's own code (not the standard library or site-packages):
    where a fix would go. Falls back to the deepest frame."""
    for path, line, function in reversed(frames):
        if not LIBRARY_PATH.search(path):
            return "%s:%s in %s" % (path, line, function)
    return "%s:%s in %s" % frames[-1] if frames else None


def error_type(text):
    """The exception type a failure line names (`ValueError: ...`, `error=KeyError(...)`), or None."""
    match = re.search(r"\b([A-Z]\w*(?:Error|Exception|Exit|Timeout|Interrupt))\b", text or "")
    return match.group(1) if match else None


class LogStory:
    """What the code did, read line by line alongside the markers: exceptions grouped by type and
    innermost application frame, each run's end (the job that failed last, or the one in progress,
    when a new start follows), and the jobs of the current run received and not yet finished."""

    def __init__(self):
        self.groups = {}
        self.exits = []
        self.open_jobs = {}                 # job -> (stamp, epoch) of its last receipt, this run
        self.last_failure = None            # (job, type) when the run's last event was a failure
        self.pending = None                 # a failure line whose traceback may follow
        self.traceback = None               # the frames of the traceback being read
        self.exception = None               # a finished traceback's exception, until no chain follows
        self.chained = False                # Python said the next traceback is a chain of this one
        self.seen_lines = self.earlier_lines = False
        self.kms = {"count": 0, "last": None, "keys": [], "actions": []}
        self.tasks = {}                     # job -> the task (type) a marker named for it (Celery's task names)

    def current_job(self):
        if not self.open_jobs:
            return None
        return max(self.open_jobs.items(), key=lambda item: item[1][1] or 0)[0]

    def _group(self, kind, where, message, job, stamp):
        key = (kind, where) if where else (kind, re.sub(r"\d+", "N", message or "")[:80])
        group = self.groups.get(key)
        if group is None:
            if len(self.groups) >= MAX_GROUPS:
                return
            group = self.groups[key] = {"type": kind, "where": where, "message": (message or "")[:200],
                                        "count": 0, "first": stamp, "last": stamp, "jobs": [], "tasks": []}
        group["count"] += 1
        group["last"] = stamp or group["last"]
        if job and job not in group["jobs"]:
            group["jobs"] = (group["jobs"] + [job])[-MAX_GROUPS:]
        if job in self.tasks and self.tasks[job] not in group["tasks"]:
            group["tasks"] = (group["tasks"] + [self.tasks[job]])[:MAX_GROUPS]

    def _flush_pending(self):
        if self.pending is not None:
            job, error, stamp = self.pending
            self._group(error_type(error), None, error, job, stamp)
            self.pending = None

    def _flush_exception(self):
        if self.exception is not None:
            self._group(*self.exception)
            self.exception = None

    def line(self, text, stamp):
        """Feed one line (its source's prefix removed); True when it belongs to a traceback."""
        self.earlier_lines, self.seen_lines = self.seen_lines, True
        if KMS_DENIED.search(text):
            self.kms["count"] += 1
            self.kms["last"] = stamp
            for found, field in ((KMS_KEY.findall(text), "keys"), (KMS_ACTION.findall(text), "actions")):
                self.kms[field] = sorted(set(self.kms[field]) | set(found))[:10]
        if text.startswith(TRACEBACK):
            job = self.pending[0] if self.pending else self.current_job()
            if self.exception is not None and self.chained:     # a chain: the last exception raised counts
                job = job or self.exception[3]
                self.exception = None
            self._flush_exception()             # else the previous one stands alone (a crash at each start)
            self.chained = False
            self.pending = None
            self.traceback = {"frames": [], "job": job, "stamp": stamp}
            return True
        if self.traceback is not None:
            frame = FRAME.match(text)
            if frame:
                self.traceback["frames"].append((frame.group("path"), frame.group("line"), frame.group("function")))
                return True
            if text[:1].isspace() or not text.strip():
                return True             # the source line under a frame, or ^^^^ markers
            found = EXCEPTION.match(text.strip())
            if found:
                trace = self.traceback
                self.exception = (found.group("type"), innermost_app_frame(trace["frames"]),
                                  found.group("message"), trace["job"], trace["stamp"])
                if trace["job"] and self.last_failure and self.last_failure[0] == trace["job"]:
                    self.last_failure = (trace["job"], found.group("type"))
                self.traceback = None
                return True
            self.traceback = None
        if self.exception is not None and (not text.strip() or text.startswith(CHAINED)):
            self.chained = self.chained or text.startswith(CHAINED)
            return True
        self._flush_exception()
        self._flush_pending()
        return False

    def marker(self, kind, job, error, stamp, epoch, task=None):
        """A marker matched on the line just fed."""
        if job and task:
            self.tasks[job] = task
        if kind == MarkerKind.STARTED:
            self.run_ended(stamp)
        elif kind == MarkerKind.RECEIVED and job:
            self.open_jobs[job] = (stamp, epoch)
            self.last_failure = None
        elif kind == MarkerKind.COMPLETED:
            self.open_jobs.pop(job, None)
            self.last_failure = None
        elif kind == MarkerKind.FAILED:
            job = job or self.current_job()
            self.open_jobs.pop(job, None)
            self.last_failure = (job, error_type(error))
            self.pending = (job, error, stamp)

    def run_ended(self, stamp):
        """A start: the previous run of the process ended before it (when any line came first)."""
        if self.earlier_lines:
            if self.last_failure is not None:
                job, kind = self.last_failure
                self.exits.append({"at": stamp, "after": "failure", "job": job, "type": kind})
            elif self.open_jobs:
                self.exits.append({"at": stamp, "after": "in-progress", "job": self.current_job(), "type": None})
            else:
                self.exits.append({"at": stamp, "after": None, "job": None, "type": None})
            self.exits = self.exits[-MAX_GROUPS:]
        self.open_jobs, self.last_failure = {}, None

    def finish(self, now):
        self._flush_exception()
        self._flush_pending()
        groups = sorted(self.groups.values(), key=lambda g: -g["count"])
        open_jobs = sorted(self.open_jobs.items(), key=lambda item: item[1][1] or 0)[-MAX_GROUPS:]
        return {"exceptions": groups, "exits": self.exits,
                "open_jobs": [[job, stamp, round(now - epoch, 1) if epoch else None]
                              for job, (stamp, epoch) in open_jobs],
                "kms_denied": self.kms if self.kms["count"] else None}


def scan_logs(workload, seconds, max_bytes, timeout):
    """Counts, last time and job ids of each marker in the window (`seconds` back), from the newest
    `max_bytes`, with the receive-to-completion time of each job, the receipts per job, and the
    story of the code (LogStory)."""
    missing, newest = read_logs(workload, seconds, max_bytes, timeout)
    if missing:
        return missing
    now = time.time()
    since = now - seconds
    prefix = SOURCE_PREFIX.get(workload.source.kind)
    compiled = [(m, re.compile(m.pattern)) for m in workload.markers]
    found = {m.name: {"kind": m.kind, "queue": m.queue, "count": 0, "last": None, "jobs": [],
                      "minutes": {}} for m in workload.markers}
    receipts, received_at, longest, aliases = {}, {}, 0.0, {}
    story = LogStory()
    lines, oldest = 0, None
    for line in newest.lines:
        stamp, epoch = stamp_of(line)
        if epoch is not None and epoch < since:
            continue                # a rotated file's older lines
        lines += 1
        oldest = oldest or stamp
        if story.line(prefix.sub("", line, 1) if prefix else line, stamp):
            continue
        for marker, pattern in compiled:
            match = pattern.search(line)
            if not match:
                continue
            entry = found[marker.name]
            entry["count"] += 1
            entry["last"] = stamp or entry["last"]
            if stamp:           # per minute, for the report's job flow; the newest MAX_MINUTES kept
                minutes = entry["minutes"]
                minutes[stamp[:16]] = minutes.get(stamp[:16], 0) + 1
                if len(minutes) > MAX_MINUTES:
                    del minutes[min(minutes)]
            captured = match.groupdict()
            job = captured.get("job")
            if job and captured.get("alias") and len(aliases) < MAX_JOBS:
                aliases[job] = captured["alias"]        # the worker's own id for the job it follows
            story.marker(marker.kind, job, captured.get("error"), stamp, epoch, captured.get("task"))
            if not job:
                continue
            entry["jobs"] = [seen for seen in entry["jobs"] if seen[0] != job][-(MAX_JOBS - 1):]
            entry["jobs"].append([job, stamp])
            if marker.kind == MarkerKind.RECEIVED:
                receipts[job] = receipts.get(job, 0) + 1
                if epoch is not None:
                    received_at[job] = epoch        # a redelivery starts the job again
            elif marker.kind == MarkerKind.COMPLETED and job in received_at and epoch is not None:
                longest = max(longest, epoch - received_at[job])
    repeated = dict(sorted(((j, n) for j, n in receipts.items() if n > 1), key=lambda item: -item[1])[:20])
    return dict(story.finish(now), read=True, lines=lines, truncated_at=newest.max_bytes if newest.dropped else None,
                oldest=oldest, markers=found, repeated_receipts=repeated, aliases=aliases,
                longest_processing_seconds=round(longest, 3) if longest else None)
