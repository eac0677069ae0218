"""Typed settings (auditor/settings.py): one schema of frozen records, built once per host; the
inventory's validation reads its types from the records; nothing downstream indexes a dict."""
import dataclasses
import json

import pytest

from auditor.errors import InventoryError
from auditor.inventory import host_settings, load_inventory
from auditor.settings import GENERIC, Field, Marker, Queue, Role, Settings, Timeouts, schema_of


def test_records_are_frozen_and_round_trip_through_the_inventorys_shape():
    reference = host_settings({})
    assert Settings.from_mapping(reference.as_mapping()) == reference
    assert json.loads(json.dumps(reference.as_mapping())) == reference.as_mapping()    # JSON-ready
    with pytest.raises(dataclasses.FrozenInstanceError):
        reference.parallel = 1
    video = reference.role("video-worker")
    assert isinstance(video, Role) and video.consumes == ("video",)
    assert all(isinstance(m, Marker) for m in video.markers) and video.log_source.kind == "docker"
    assert reference.queues["video"] == Queue("video", "academy-video-jobs", "VIDEO_SQS_QUEUE_NAME")


def test_the_schema_is_read_from_the_records_not_from_default_values():
    schema = schema_of(Settings)
    assert schema["timeouts"] == Field((dict,), Timeouts)
    assert schema["app_container"].types == (str, type(None))       # its default (None) says nothing of str
    assert schema["queues"].entries is Queue and "key" not in schema_of(Queue)
    assert schema["role_defs"].entries is Role and "name" not in schema_of(Role)
    assert schema["roles"].types == (list,) and schema["log_max_bytes"].types == (int, float)


def test_every_setting_has_its_meaning_and_the_generic_defaults_name_no_app():
    assert all(item.metadata.get("doc") for item in dataclasses.fields(Settings))
    assert GENERIC.queues == {} and GENERIC.role_defs == {} and GENERIC.check_script is None


def inventory(tmp_path, auditor):
    path = tmp_path / "inventory.yaml"
    path.write_text(json.dumps({"all": {"vars": {"auditor": auditor}, "hosts": {"h1": {"ansible_host": "10.0.0.1"}}}}))
    return path


@pytest.mark.parametrize("auditor, words", [
    ({"timeouts": {"connect": "soon"}}, "auditor.timeouts.connect must be a number"),
    ({"queues": {"jobs": {"nmae": "q"}}}, "did you mean 'name'?"),
    ({"role_defs": {"w": {"consumes": "jobs"}}}, "auditor.role_defs.w.consumes must be a list"),
    ({"credentials": {"prefer": [{"key_id": "K"}]}}, "credentials.prefer[0] needs secret"),
    ({"log_window": [1]}, "log_window must be a string or a number"),
])
def test_validation_errors_keep_file_line_and_a_fix(tmp_path, auditor, words):
    with pytest.raises(InventoryError) as error:
        load_inventory(inventory(tmp_path, auditor))
    assert words in str(error.value) and "inventory.yaml:" in str(error.value) and "fix:" in str(error.value)


def test_a_nullable_setting_keeps_its_null_and_others_fall_back_to_their_default(tmp_path):
    [spec] = load_inventory(inventory(tmp_path, {"imds_endpoint": None, "parallel": None, "roles": ["api"]}))
    assert spec.settings.imds_endpoint is None          # null: never asked
    assert spec.settings.parallel == GENERIC.parallel   # null where null is no value: the default


def test_a_list_of_names_holds_null_only_where_its_type_says_so(tmp_path):
    [spec] = load_inventory(inventory(tmp_path, {"roles": ["api"], "cross_check": {"profiles": [None, "staging"]}}))
    assert spec.settings.cross_check.profiles == (None, "staging")        # null: the default credential chain
    with pytest.raises(InventoryError, match="auditor.roles must list names"):
        load_inventory(inventory(tmp_path, {"roles": [None]}))
