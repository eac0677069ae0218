"""What the agent reads of the code from a worker's log (agent/logs.py), and the rules that
judge it (diagnosis): exceptions grouped by type and innermost application frame, how each run
ended, jobs never finished, KMS denials. The log lines are the reference app's (seed README)."""
import time

from auditor import diagnosis
from auditor.agent import logs
from auditor.agent.wire import WorkloadConfig, from_wire
from auditor.facts import ContainerReading, QueueReading, _logs
from auditor.inventory import host_settings

DEFAULT_SETTINGS = host_settings({})     # the reference profile, resolved

VIDEO_MARKERS = DEFAULT_SETTINGS.as_mapping()["role_defs"]["video-worker"]["markers"]
AI_MARKERS = DEFAULT_SETTINGS.as_mapping()["role_defs"]["ai-worker"]["markers"]


def at(seconds_ago):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - seconds_ago)) + ",000"


def scan(tmp_path, lines, markers):
    path = tmp_path / "worker.log"
    path.write_text("\n".join(lines) + "\n")
    workload = from_wire(WorkloadConfig, {"name": "w", "role": "video-worker", "markers": markers,
                                          "source": {"kind": "file", "path": str(path)}})
    return logs.scan_logs(workload, 3600, 1 << 20, 10)


def video_crash(seconds_ago, video_id, site_packages=False):
    """The video worker's failure path: the failure line, its traceback, then the process ends."""
    frames = ['  File "/app/apps/worker/video_worker/sqs_main.py", line 212, in handle',
              '    process_video(job)',
              '  File "/app/apps/worker/video_worker/encode.py", line 88, in process_video',
              '    run_ffmpeg(args)']
    if site_packages:
        frames += ['  File "/usr/local/lib/python3.11/site-packages/ffmpeg/_run.py", line 325, in run',
                   '    raise Error("ffmpeg", out, err)']
    return ["%s INFO SQS_MESSAGE_RECEIVED | job_id=5%s | video_id=%s | tenant_id=1 | queue_wait_sec=0.1"
            % (at(seconds_ago), video_id, video_id),
            "%s ERROR JOB_PROCESSING_FAILED | job_id=5%s | video_id=%s | error=ffmpeg exited 1"
            % (at(seconds_ago), video_id, video_id),
            "Traceback (most recent call last):"] + frames + ["RuntimeError: ffmpeg exited 1"]


def started(seconds_ago):
    return "%s INFO Video Worker (SQS) started" % at(seconds_ago)


def test_a_traceback_is_grouped_by_its_type_and_innermost_application_frame(tmp_path):
    lines = [started(300)]
    for n in range(3):
        lines += video_crash(250 - n * 60, "77", site_packages=True) + [started(249 - n * 60)]
    result = scan(tmp_path, lines, VIDEO_MARKERS)
    [group] = result["exceptions"]
    assert group["type"] == "RuntimeError" and group["count"] == 3
    assert group["where"] == "/app/apps/worker/video_worker/encode.py:88 in process_video"    # not site-packages
    assert group["jobs"] == ["77"]
    assert [(e["after"], e["job"], e["type"]) for e in result["exits"]] == [("failure", "77", "RuntimeError")] * 3


def test_runs_that_end_on_one_job_are_a_crash_loop_not_a_worker_down():
    reading = _logs({"read": True, "exits": [{"at": "t%d" % n, "after": "failure", "job": "77", "type": "RuntimeError"}
                                             for n in range(3)]})
    worker = ContainerReading("academy-video-worker", "video-worker", True, status="running", restart_count=3,
                              logs=reading)
    assert diagnosis.crash_loop_job(worker) == ("77", 3, "RuntimeError")
    [finding] = diagnosis._container_state("video-1", worker, DEFAULT_SETTINGS)
    assert finding.code == "job-crash-loop" and "77" in finding.remedy
    # restarts that end on no job (a redeploy, a crash at start) stay a restarting container
    idle = _logs({"read": True, "exits": [{"at": "t", "after": None, "job": None, "type": None}] * 3})
    [finding] = diagnosis._container_state("video-1", ContainerReading(
        "academy-video-worker", "video-worker", True, status="running", restart_count=3, logs=idle), DEFAULT_SETTINGS)
    assert finding.code == "container-restarting"


def test_a_chained_traceback_counts_once_as_the_exception_raised_last(tmp_path):
    lines = ["%s INFO SQS_MESSAGE_RECEIVED | worker=w | request_id=r | job_id=xl-9 | tier=basic" % at(60),
             "%s ERROR Unexpected error: could not parse" % at(59),
             "Traceback (most recent call last):",
             '  File "/app/academy/excel.py", line 10, in parse',
             "KeyError: 'phone'",
             "",
             "During handling of the above exception, another exception occurred:",
             "",
             "Traceback (most recent call last):",
             '  File "/app/academy/excel.py", line 14, in parse',
             "ValueError: could not parse",
             "%s INFO SQS_MESSAGE_RECEIVED | worker=w | request_id=r | job_id=xl-10 | tier=basic" % at(50),
             "%s INFO EXCEL_PARSING processed_by=worker job_id=xl-10 enrolled=3" % at(49)]
    result = scan(tmp_path, lines, AI_MARKERS)
    [group] = result["exceptions"]
    assert (group["type"], group["where"], group["count"], group["jobs"]) == (
        "ValueError", "/app/academy/excel.py:14 in parse", 1, ["xl-9"])      # the job in progress took it
    assert result["open_jobs"] == []


def test_a_failure_line_without_traceback_is_grouped_by_its_text(tmp_path):
    lines = []
    for n in range(3):
        lines += ["%s INFO SQS_MESSAGE_RECEIVED | worker=w | request_id=r | job_id=xl-%d | tier=basic" % (at(90 - n), n),
                  "%s WARNING SQS_JOB_FAILED | request_id=r | job_id=xl-%d | error=invalid literal for int() with "
                  "base 10: 'N/A'" % (at(90 - n), n)]
    lines += ["%s INFO SQS_MESSAGE_RECEIVED | worker=w | request_id=r | job_id=xl-ok | tier=basic" % at(10),
              "%s INFO EXCEL_PARSING processed_by=worker job_id=xl-ok enrolled=3" % at(10)]
    reading = _logs(scan(tmp_path, lines, AI_MARKERS))
    [group] = reading.exceptions
    assert group.type is None and group.count == 3 and group.jobs == ("xl-0", "xl-1", "xl-2")
    worker = ContainerReading("academy-ai-worker-cpu", "ai-worker", True, status="running", logs=reading)
    [finding] = diagnosis._worker_activity("ai-1", worker, [], DEFAULT_SETTINGS)
    assert finding.code == "worker-exceptions" and "1 job(s) completed" in finding.message


def test_aws_errors_in_tracebacks_stay_on_the_config_side(tmp_path):
    lines = ["%s ERROR Unexpected error: boom" % at(30), "Traceback (most recent call last):",
             '  File "/app/worker.py", line 3, in main',
             "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the ReceiveMessage "
             "operation: denied"]
    reading = _logs(scan(tmp_path, lines, AI_MARKERS))
    assert [diagnosis.is_aws_error(g) for g in reading.exceptions] == [True]
    worker = ContainerReading("academy-ai-worker-cpu", "ai-worker", True, status="running", logs=reading)
    assert "worker-exceptions" not in [f.code for f in diagnosis._worker_activity("ai-1", worker, [], DEFAULT_SETTINGS)]


def test_a_job_held_past_the_visibility_timeout_is_stuck_and_unknown_timeout_says_nothing(tmp_path):
    lines = ["%s INFO SQS_MESSAGE_RECEIVED | worker=w | request_id=r | job_id=xl-4 | tier=basic" % at(120)]
    reading = _logs(scan(tmp_path, lines, AI_MARKERS))
    assert [j.job for j in reading.open_jobs] == ["xl-4"] and reading.open_jobs[0].age >= 119
    worker = ContainerReading("academy-ai-worker-cpu", "ai-worker", True, status="running", logs=reading)
    queue = QueueReading("ai-basic", "q", "ap-northeast-2", url="u", attributes={"VisibilityTimeout": "30"})
    assert [f.code for f in diagnosis._worker_activity("ai-1", worker, [queue], DEFAULT_SETTINGS)] == ["job-stuck"]
    unknown = QueueReading("ai-basic", "q", "ap-northeast-2", url="u")
    assert [f.code for f in diagnosis._worker_activity("ai-1", worker, [unknown], DEFAULT_SETTINGS)] == []


def test_kms_denials_name_the_key_and_the_action(tmp_path):
    lines = ["%s ERROR Failed to enqueue video job: An error occurred (KMS.AccessDeniedException) when calling the "
             "SendMessage operation: User: arn:aws:sts::123456789012:assumed-role/api is not authorized to perform: "
             "kms:GenerateDataKey on resource: arn:aws:kms:ap-northeast-2:123456789012:key/abcd-1234" % at(20)]
    reading = _logs(scan(tmp_path, lines, []))
    assert reading.kms_denied.count == 1
    assert reading.kms_denied.keys == ("arn:aws:kms:ap-northeast-2:123456789012:key/abcd-1234",)
    assert reading.kms_denied.actions == ("kms:GenerateDataKey",)


def test_a_process_whose_runs_end_on_one_job_still_has_its_exception_reported(tmp_path):
    """A plain process has no container state rule, so no crash-loop finding names the job: its
    exception must not be taken as explained (it was, when the activity rule re-derived the loop)."""
    lines = [started(300)]
    for n in range(3):
        lines += video_crash(250 - n * 60, "77") + [started(249 - n * 60)]
    reading = _logs(scan(tmp_path, lines, VIDEO_MARKERS))
    process = ContainerReading("/var/log/video.log", "video-worker", True, status="running", logs=reading)
    [finding] = diagnosis._worker_activity("video-1", process, [], DEFAULT_SETTINGS)
    assert finding.code == "job-repeated-failure" and "77 x3" in finding.message, finding.message
    assert "RuntimeError" in finding.message
    assert [f.code for f in diagnosis._worker_activity("video-1", process, [], DEFAULT_SETTINGS, named_jobs={"77"})] == []


def test_a_worker_that_dies_at_start_is_said_by_its_cause_not_as_a_job_fault():
    from auditor.facts import ExceptionGroup
    def group(kind, message, where="/app/worker.py:3 in <module>"):
        return ExceptionGroup(kind, where, message, 4, None, None)
    assert diagnosis.startup_cause(group("django.core.exceptions.ImproperlyConfigured",
                                         "Set the DJANGO_SECRET_KEY environment variable")) == "config"
    assert diagnosis.startup_cause(group("KeyError", "'DJANGO_SECRET_KEY'")) == "config"
    assert diagnosis.startup_cause(group("ValueError", "bad port", "/app/config/settings/prod.py:9 in <module>")) \
        == "config"
    assert diagnosis.startup_cause(group("botocore.exceptions.NoRegionError", "You must specify a region.")) == "config"
    assert diagnosis.startup_cause(group("ModuleNotFoundError", "No module named 'academy_transcode_pipeline'")) \
        == "code"
    assert diagnosis.startup_cause(group("SyntaxError", "invalid syntax")) == "code"
    assert diagnosis.startup_cause(group("KeyError", "'tier'")) is None            # a job's input, not the environment
    assert diagnosis.startup_cause(group("RuntimeError", "settings module failed to import")) is None


def test_a_crash_at_each_start_is_counted_once_per_run_and_a_chain_once(tmp_path):
    crash = ["Traceback (most recent call last):", '  File "/app/worker.py", line 114, in main',
             "ModuleNotFoundError: No module named 'academy_transcode_pipeline'"]
    result = scan(tmp_path, crash * 4, AI_MARKERS)
    (group,) = result["exceptions"]
    assert group["type"] == "ModuleNotFoundError" and group["count"] == 4
    chain = ["Traceback (most recent call last):", '  File "/app/settings.py", line 9, in env', "KeyError: 'X'", "",
             "During handling of the above exception, another exception occurred:", ""] + \
        ["Traceback (most recent call last):", '  File "/app/settings.py", line 11, in env',
         "django.core.exceptions.ImproperlyConfigured: Set the X environment variable"]
    result = scan(tmp_path, chain, AI_MARKERS)
    (group,) = result["exceptions"]
    assert group["type"].endswith("ImproperlyConfigured") and group["count"] == 1


def test_a_job_is_named_by_both_ids_when_the_worker_logs_its_own_beside_the_followed_one(tmp_path):
    lines = [started(300)]
    for n in range(3):
        lines += video_crash(250 - n * 60, "77") + [started(249 - n * 60)]
    result = scan(tmp_path, lines, VIDEO_MARKERS)
    assert result["aliases"] == {"77": "577"}          # video 77's job row is 577
    worker = ContainerReading("academy-video-worker", "video-worker", True, status="running", restart_count=3,
                              logs=_logs(dict(result, read=True)))
    [finding] = diagnosis._container_state("video-1", worker, DEFAULT_SETTINGS)
    assert finding.code == "job-crash-loop" and "right after job 577, video 77 failed" in finding.message
