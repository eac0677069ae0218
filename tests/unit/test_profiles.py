"""App profiles as data: the reference deployment is one YAML file; `profile: none` (or another
profile) leaves nothing of it; null removes an inherited entry everywhere; the app environment
and workloads are decided once."""
import json

import pytest

from auditor import codes
from auditor.agent.wire import to_wire
from auditor.collect import agent_config
from auditor.errors import InventoryError
from auditor.inventory import load_inventory
from auditor.render.table import inventory_table
from auditor.settings import Timeouts

# the reference app's own words: none may reach another app's settings, agent or remedies
REFERENCE_WORDS = ("academy", "video", "ai-basic", "excel", "scripts/", "video_id", "/app", "django", "ec2-user",
                   "ap-northeast-2", "AWS_ROOT")

SHOP = """\
queue_create_hint: "terraform apply -target=aws_sqs_queue.orders"
region: {env: [SHOP_REGION], default: eu-west-1}
queues:
  orders: {name: shop-orders, env: ORDERS_QUEUE}
role_defs:
  web: {container: shop-web, produces: [orders],
        markers: [{name: sent, kind: enqueued, queue: orders, pattern: 'order queued id=(?P<job>\\d+)'}]}
  worker: {container: shop-worker, consumes: [orders],
           markers: [{name: got, kind: received, pattern: 'order received id=(?P<job>\\d+)'}]}
"""


def inventory(tmp_path, auditor, profile_text=None):
    if profile_text is not None:
        (tmp_path / "shop.yaml").write_text(profile_text)
    path = tmp_path / "inventory.yaml"
    path.write_text(json.dumps({"all": {"vars": {"auditor": auditor}, "hosts": {
        "h1": {"ansible_host": "127.0.0.1"}}}}))
    return load_inventory(path)


def test_another_profile_leaves_nothing_of_the_reference_app(tmp_path):
    [spec] = inventory(tmp_path, {"profile": str(tmp_path / "shop.yaml"), "roles": ["worker"]}, SHOP)
    text = json.dumps(spec.settings.as_mapping()) + json.dumps(to_wire(agent_config(spec)))
    assert not [word for word in REFERENCE_WORDS if word.lower() in text.lower()]
    assert sorted(spec.settings.role_defs) == ["web", "worker"] and spec.settings.profile == "shop"
    assert agent_config(spec).app.container == "shop-worker"


def test_profile_none_is_only_what_the_inventory_says(tmp_path):
    [spec] = inventory(tmp_path, {"profile": "none", "queues": {"jobs": {"name": "q"}},
                                  "role_defs": {"w": {"container": "c", "consumes": ["jobs"]}}, "roles": ["w"]})
    text = json.dumps(spec.settings.as_mapping()) + json.dumps(to_wire(agent_config(spec)))
    assert not [word for word in REFERENCE_WORDS if word.lower() in text.lower()]
    assert spec.settings.role("w").markers == () and spec.settings.queues["jobs"].env is None


def test_no_remedy_or_description_in_the_registry_names_the_reference_app():
    for entry in codes.CODES.values():
        text = (entry.description + entry.remedy + "".join(fix for _, fix in entry.causes)).lower()
        assert not [word for word in REFERENCE_WORDS if word.lower() in text], entry.code


def test_null_removes_a_queue_everywhere(tmp_path):
    [spec] = inventory(tmp_path, {"roles": ["api"], "queues": {"video": None}})
    assert sorted(spec.settings.queues) == ["ai-basic"]
    api = spec.settings.role("api")
    assert api.produces == ("ai-basic",) and all(m.queue != "video" for m in api.markers)
    assert sorted(agent_config(spec).probe.queues) == ["ai-basic"]        # the probe asks for it no more


def test_null_restores_a_default_and_a_later_layer_can_set_it_again(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text(json.dumps({"all": {"vars": {"auditor": {"queues": {"video": None}, "timeouts": None}},
                                        "hosts": {"h1": {"ansible_host": "127.0.0.1", "auditor": {
                                            "queues": {"video": {"name": "mine"}}}}}}}))
    [spec] = load_inventory(path)
    assert spec.settings.queues["video"].name == "mine"
    assert spec.settings.timeouts == Timeouts(connect=10, command=60, aws=5)


def test_an_unknown_profile_is_refused_with_a_suggestion(tmp_path):
    with pytest.raises(InventoryError, match="did you mean 'academy'"):
        inventory(tmp_path, {"profile": "acadmy"})
    with pytest.raises(InventoryError, match="shop.yaml:1: unknown key"):
        inventory(tmp_path, {"profile": str(tmp_path / "shop.yaml")}, "queus: {}\n")


def test_hosts_and_the_agent_agree_on_a_file_logging_worker(tmp_path):
    """The derived-twice bug: `hosts` printed a container the agent does not use."""
    [spec] = inventory(tmp_path, {"roles": ["ai-worker"], "role_defs": {"ai-worker": {
        "log_source": {"kind": "file", "path": "/var/log/ai.log"}}}})
    config = agent_config(spec)
    assert (config.app.env_from, config.app.container) == ("dotenv", None)
    row = inventory_table([spec], lambda s: "ssh").splitlines()[2]
    assert "dotenv" in row and "academy-ai-worker-cpu" not in row


def test_the_docs_settings_reference_is_the_schema():
    from pathlib import Path

    from auditor.settings import settings_table
    page = Path(__file__).resolve().parents[2] / "docs" / "inventory.md"
    assert settings_table() in page.read_text(), "regenerate it: python -m auditor.settings"
