"""The SCIM mapping without I/O: filters, PATCH operations, reading a directory's User, projections."""

from __future__ import annotations

from typing import Any

import pytest

from profile_service.adapters.repository import Lookup
from profile_service.scim import (
    ENTERPRISE,
    PATCH_OP,
    USER,
    ScimError,
    UserState,
    apply_patch,
    paging,
    parse_filter,
    project,
    user_state_from,
)


def ops(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def test_filters_eq_and_and():
    assert parse_filter('userName eq "a@b.org"') == Lookup(user_name="a@b.org")
    assert parse_filter(f'{USER}:externalId eq "x \\"y\\"" and ID eq "p1"') == Lookup(
        external_id='x "y"', profile_id="p1"
    )
    assert parse_filter('emails.value eq "a@b.org" and active eq false') == Lookup(email="a@b.org", active=False)
    assert parse_filter('userName eq "A@b.org" and userName eq "a@B.org"') == Lookup(user_name="a@B.org")
    assert parse_filter('externalId eq "1" and externalId eq "2"').conflicting
    assert parse_filter(None) == Lookup() and parse_filter("  ") == Lookup()


@pytest.mark.parametrize(
    "text",
    [
        'userName sw "a"',
        'title eq "x"',
        "userName eq",
        'userName eq "a" or id eq "b"',
        "userName eq a",
        'not (userName eq "a")',
        'userName eq "a" and',
        "active eq 1",
        'userName eq "open',
        "x" * 1001,
    ],
)
def test_unsupported_or_broken_filters_are_invalid_filters(text):
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    assert (caught.value.status, caught.value.scim_type) == (400, "invalidFilter")


def test_paging():
    assert paging(None, None) == (1, 100)
    assert paging("0", "-5") == (1, 0)
    assert paging(3, 1000) == (3, 200)
    with pytest.raises(ScimError):
        paging("x", None)


def test_a_user_from_the_directory():
    state = user_state_from(
        {
            "schemas": [USER, ENTERPRISE],
            "USERNAME": "jdoe",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"value": "home@x.org"}, {"value": "jane@corp.example", "primary": True}],
            "active": "False",
            ENTERPRISE: {"department": "R&D", "manager": "p-boss"},
            "phoneNumbers": [{"value": "1"}],
        }
    )
    assert state == UserState(
        user_name="jdoe",
        display_name="Jane Doe",
        email="jane@corp.example",
        active=False,
        department="R&D",
        manager_id="p-boss",
    )
    assert state.profile_changes()["email"] == "jane@corp.example"
    assert state.marks() == {"scim_user_name": "jdoe"}
    assert UserState(user_name="Jane@Corp.example", email="jane@corp.example").marks() == {"scim_user_name": None}
    with pytest.raises(ScimError, match="email"):
        UserState(user_name="jdoe").profile_changes()
    for bad in (
        {"userName": 3},
        {"userName": "a@b.org", "active": "yes"},
        {"userName": "a@b.org", "emails": "x"},
        {"schemas": ["urn:other"], "userName": "a@b.org"},
        [],
    ):
        with pytest.raises(ScimError):
            user_state_from(bad)


def test_patch_operations_with_and_without_path():
    state = UserState(user_name="a@b.org", display_name="A", email="a@b.org", title="T", department="D", manager_id="m")
    assert apply_patch(state, ops({"op": "Replace", "path": "active", "value": "False"})).active is False
    patched = apply_patch(
        state,
        ops(
            {
                "op": "replace",
                "value": {"displayName": "B", "name.givenName": "ignored", f"{ENTERPRISE}:department": "E"},
            }
        ),
    )
    assert (patched.display_name, patched.department) == ("B", "E")
    patched = apply_patch(
        state,
        ops(
            {"op": "add", "path": 'emails[type eq "work"].value', "value": "c@d.org"},
            {"op": "remove", "path": "title"},
            {"op": "remove", "path": f"{ENTERPRISE}:manager"},
            {"op": "add", "path": ENTERPRISE, "value": {"department": "F"}},
            {"op": "replace", "path": "name.formatted", "value": "C D"},
        ),
    )
    assert (patched.email, patched.title, patched.manager_id, patched.department, patched.display_name) == (
        "c@d.org",
        None,
        None,
        "F",
        "C D",
    )


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        (ops({"op": "remove"}), "noTarget"),
        (ops({"op": "remove", "path": "emails"}), "mutability"),
        (ops({"op": "replace", "path": "meta", "value": {}}), "mutability"),
        (ops({"op": "copy", "path": "title", "value": "x"}), "invalidValue"),
        (ops({"op": "replace", "path": "title"}), "invalidValue"),
        (ops({"op": "replace", "value": "x"}), "invalidValue"),
        (ops({"op": "replace", "path": "title[x]", "value": "x"}), "invalidPath"),
        (ops({"op": "replace", "path": "title.sub", "value": "x"}), "invalidPath"),
        (ops({"op": "replace", "path": 7, "value": "x"}), "invalidPath"),
        ({"Operations": [{"op": "remove", "path": "title"}]}, "invalidSyntax"),
        (ops(), "invalidSyntax"),
        ("nope", "invalidSyntax"),
    ],
)
def test_bad_patches(body, scim_type):
    with pytest.raises(ScimError) as caught:
        apply_patch(UserState(user_name="a@b.org"), body)
    assert (caught.value.status, caught.value.scim_type) == (400, scim_type)


def test_attributes_and_excluded_attributes():
    resource = {
        "schemas": [USER, ENTERPRISE],
        "id": "p1",
        "userName": "a@b.org",
        "title": "T",
        ENTERPRISE: {"department": "D", "manager": {"value": "m"}},
        "meta": {"version": 'W/"1"'},
    }
    assert project(resource, "userName", None) == {"schemas": [USER], "id": "p1", "userName": "a@b.org"}
    assert project(resource, f"{ENTERPRISE}:department", None) == {
        "schemas": [USER, ENTERPRISE],
        "id": "p1",
        ENTERPRISE: {"department": "D"},
    }
    assert set(project(resource, None, "title,meta,id")) == {"schemas", "id", "userName", ENTERPRISE}
    assert project(resource, None, ENTERPRISE)["schemas"] == [USER]
