"""What a Celery app on SQS resolves, read from its own Celery object in the app's environment:
imported, never connected. The rules are kombu's SQS transport's: the keys in the broker URL
(URL-encoded), `broker_transport_options` (region, queue_name_prefix, predefined_queues), and,
when the options name no region, boto3's own region, else the transport's default us-east-1,
which need not be the app's."""
import importlib
import os
import re
import sys
import urllib.parse

KOMBU_DEFAULT_REGION = "us-east-1"


def load_app(path):
    """`proj.celery:app` (or `proj.celery.app`): the object, imported from the app's directory."""
    module, _, attribute = path.partition(":")
    if not attribute:
        module, _, attribute = path.rpartition(".")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    found = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def queue_names(conf):
    """Every queue the app names: its default queue, task_queues and the queues of task_routes."""
    names = [conf.task_default_queue or "celery"]
    names += [getattr(queue, "name", queue) for queue in (conf.task_queues or ())]
    routes = conf.task_routes or {}
    for route in (routes.values() if isinstance(routes, dict) else ()):
        if isinstance(route, dict) and route.get("queue"):
            names.append(route["queue"])
    return list(dict.fromkeys(str(name) for name in names if name))


def canonical_name(name):
    """The SQS name kombu gives a queue: dots become dashes, other punctuation underscores."""
    suffix = ".fifo" if name.endswith(".fifo") else ""
    body = name[:-len(suffix)] if suffix else name
    return re.sub(r"[^A-Za-z0-9_-]", "_", body.replace(".", "-")) + suffix


def celery_view(path, boto3_region):
    """{broker, region, keys, queues, options}, or raises what importing the app raised."""
    conf = load_app(path).conf
    url = conf.broker_read_url or conf.broker_url or ""
    parsed = urllib.parse.urlsplit(url)
    options = dict(conf.broker_transport_options or {})
    view = {"broker": "%s://%s" % (parsed.scheme, parsed.hostname or ""), "scheme": parsed.scheme,
            "options": {key: options.get(key) for key in ("region", "queue_name_prefix", "visibility_timeout",
                                                          "wait_time_seconds", "polling_interval")},
            "predefined": bool(options.get("predefined_queues"))}
    if parsed.scheme != "sqs":
        return view
    key_id = urllib.parse.unquote(parsed.username) if parsed.username else None
    secret = urllib.parse.unquote(parsed.password) if parsed.password else None
    view["keys"] = (key_id, secret, "celery broker_url") if key_id else (None, None, None)
    if options.get("region"):
        view["region"] = {"value": options["region"], "source": "celery broker_transport_options.region"}
    elif boto3_region:
        view["region"] = {"value": boto3_region, "source": "boto3 (the transport options name no region)"}
    else:
        view["region"] = {"value": KOMBU_DEFAULT_REGION, "source": "kombu's default (no region in the transport "
                                                                  "options or boto3)"}
    prefix = options.get("queue_name_prefix") or ""
    predefined = options.get("predefined_queues") or {}
    view["queues"] = []
    for name in queue_names(conf):
        entry = {"key": name, "region": view["region"]["value"]}
        if predefined:
            defined = predefined.get(name) or {}
            entry.update(name=name, name_source="celery predefined_queues", predefined_url=defined.get("url"),
                         region=defined.get("region") or view["region"]["value"])
            if defined.get("access_key_id"):
                entry["keys"] = (defined.get("access_key_id"), defined.get("secret_access_key"),
                                 "celery predefined_queues")
        else:
            entry.update(name=canonical_name(prefix + name),
                         name_source="celery queue_name_prefix %r" % prefix if prefix else "celery (no prefix)")
        view["queues"].append(entry)
    return view
