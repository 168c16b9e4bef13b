"""Committed JSON Schema snapshots are the public contract: changes must stay backward compatible."""

import copy

from mentorship_contracts import all_models
from mentorship_contracts.snapshots import SNAPSHOT_DIR, _compare, current_schemas, incompatibilities


def test_every_event_is_compatible_with_its_committed_snapshot():
    problems = incompatibilities()
    assert problems == [], "\n".join(problems) + "\n(additive changes only; `make schemas` after review)"


def test_every_registered_event_has_a_snapshot_and_metadata():
    models = all_models()
    assert "mentorship.profile.profile_registered" in models
    for type_, model in models.items():
        assert (SNAPSHOT_DIR / f"{type_}.json").exists()
        assert model.summary, f"{type_} needs a docstring: it is the catalog's description"
        assert model.subject_field in model.model_fields


def _check(old, new):
    problems: list[str] = []
    _compare("t", old, new, old, new, "", problems)
    return problems


BASE = current_schemas()["mentorship.profile.profile_registered"]


def test_checker_flags_a_removed_field():
    new = copy.deepcopy(BASE)
    del new["properties"]["profile_id"]
    assert any("profile_id removed" in p for p in _check(BASE, new))


def test_checker_flags_a_changed_type():
    new = copy.deepcopy(BASE)
    new["properties"]["profile_id"] = {"type": "integer"}
    assert any("changed type" in p for p in _check(BASE, new))


def test_checker_flags_a_new_required_field_in_a_nested_model():
    new = copy.deepcopy(BASE)
    snap = new["$defs"]["ProfileSnapshot"]
    snap["properties"]["badge"] = {"type": "string"}
    snap["required"] = [*snap.get("required", []), "badge"]
    assert any("profile.badge is newly required" in p for p in _check(BASE, new))


def test_checker_accepts_a_new_optional_field():
    new = copy.deepcopy(BASE)
    new["properties"]["extra"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert _check(BASE, new) == []


def test_checker_flags_a_field_that_is_no_longer_required():
    new = copy.deepcopy(BASE)
    new["required"] = [r for r in new["required"] if r != "profile_id"]
    assert any("profile_id is no longer required" in p for p in _check(BASE, new))


def test_checker_flags_a_widened_type():
    new = copy.deepcopy(BASE)
    new["properties"]["profile_id"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert any("changed type" in p for p in _check(BASE, new))


def _display_name(schema):
    return schema["$defs"]["ProfileSnapshot"]["properties"]["display_name"]


def test_checker_accepts_a_first_cap_or_pattern_on_an_existing_string():
    old, new = copy.deepcopy(BASE), copy.deepcopy(BASE)
    for key in ("maxLength", "pattern"):
        del _display_name(old)[key]
    assert _check(old, new) == []


def test_checker_flags_a_lowered_or_dropped_cap_and_a_changed_pattern():
    lowered = copy.deepcopy(BASE)
    _display_name(lowered)["maxLength"] = 50
    assert any("display_name changed maxLength 200 -> 50" in p for p in _check(BASE, lowered))
    dropped = copy.deepcopy(BASE)
    del _display_name(dropped)["maxLength"]
    assert any("display_name changed maxLength" in p for p in _check(BASE, dropped))
    repatterned = copy.deepcopy(BASE)
    _display_name(repatterned)["pattern"] = "^[a-z]*$"
    assert any("display_name changed pattern" in p for p in _check(BASE, repatterned))


def test_checker_flags_a_raised_floor_and_a_lowered_cap_on_list_items_and_optional_fields():
    new = copy.deepcopy(BASE)
    snap = new["$defs"]["ProfileSnapshot"]["properties"]
    _display_name(new)["minLength"] = 5
    snap["languages"]["items"]["maxLength"] = 8
    next(o for o in snap["job_title"]["anyOf"] if o.get("type") == "string")["maxLength"] = 20
    found = "\n".join(_check(BASE, new))
    assert "display_name changed minLength" in found
    assert "languages[] changed maxLength" in found
    assert "job_title changed maxLength" in found
