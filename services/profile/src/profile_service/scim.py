"""SCIM 2.0 (RFC 7643/7644) User resources mapped onto profiles: pure, no I/O.

A SCIM User is a view of a profile. Only the attributes below are kept; others a directory sends
(name parts, phone numbers, addresses...) are ignored, as RFC 7643 allows:

    userName                  -> the email, unless the directory's userName is not that email: then it is
                                 kept beside the profile (no event carries it)
    displayName (name.formatted, or given + family name, when absent) -> display_name
    emails[primary or first].value -> email (verified: the directory is the source)
    title                     -> job_title
    active                    -> active (false = an admin's deactivation, true = reactivation)
    externalId                -> external_id
    enterprise department     -> department
    enterprise manager.value  -> manager_id

A PATCH is applied to the user's current SCIM state (`UserState`) and the result goes through the
same path as a PUT: a replace of these attributes, which the profile use cases turn into events.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from .adapters.repository import Lookup, StoredProfile
from .domain import email_key

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
MEDIA_TYPE = "application/scim+json"

DEFAULT_COUNT = 100
MAX_COUNT = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ScimError(Exception):
    """An answer in the SCIM error format (RFC 7644 §3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


# --- the user's state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserState:
    """The SCIM attributes this service keeps, as a directory sees them."""

    user_name: str
    display_name: str | None = None
    email: str | None = None
    title: str | None = None
    active: bool = True
    external_id: str | None = None
    department: str | None = None
    manager_id: str | None = None

    def resolved_email(self) -> str:
        """The profile's email: the directory's email, or the userName when that is an address."""
        if self.email:
            return self.email
        if _EMAIL.match(self.user_name):
            return self.user_name
        raise invalid_value("give an email (emails[].value) or a userName that is an email address")

    def profile_changes(self) -> dict[str, Any]:
        """The profile fields this state sets (a replace of exactly these)."""
        return {
            "email": self.resolved_email(),
            "display_name": self.display_name or self.user_name,
            "job_title": self.title,
            "department": self.department,
            "manager_id": self.manager_id,
            "external_id": self.external_id,
        }

    def marks(self) -> dict[str, Any]:
        """The userName is kept beside the profile only when it is not the email."""
        own = email_key(self.user_name) != email_key(self.resolved_email())
        return {"scim_user_name": self.user_name if own else None}


def state_of(stored: StoredProfile) -> UserState:
    p = stored.profile
    return UserState(
        user_name=stored.scim_user_name or p.email,
        display_name=p.display_name,
        email=p.email,
        title=p.job_title,
        active=p.active,
        external_id=p.external_id,
        department=p.department,
        manager_id=p.manager_id,
    )


def user_resource(stored: StoredProfile, base_url: str) -> dict[str, Any]:
    p = stored.profile
    location = f"{base_url}/Users/{p.profile_id}"
    resource: dict[str, Any] = {"schemas": [USER], "id": p.profile_id}
    if p.external_id is not None:
        resource["externalId"] = p.external_id
    resource["userName"] = stored.scim_user_name or p.email
    resource["displayName"] = p.display_name
    # One address is kept, so `primary` would say nothing: the directory's primary is the one kept.
    resource["emails"] = [{"value": p.email}]
    if p.job_title is not None:
        resource["title"] = p.job_title
    resource["active"] = p.active
    enterprise: dict[str, Any] = {}
    if p.department is not None:
        enterprise["department"] = p.department
    if p.manager_id is not None:
        enterprise["manager"] = {"value": p.manager_id, "$ref": f"{base_url}/Users/{p.manager_id}"}
    if enterprise:
        resource["schemas"] = [USER, ENTERPRISE]
        resource[ENTERPRISE] = enterprise
    resource["meta"] = {"resourceType": "User", "location": location, "version": etag(stored.version)}
    return resource


def etag(version: int) -> str:
    return f'W/"{version}"'


def version_from(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise invalid_value('If-Match must be a version such as W/"3"')
    return int(raw)


# --- reading a resource a directory sends ---------------------------------------------------------


def _lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    """Attribute names are case-insensitive (RFC 7643 §2.1)."""
    return {str(k).lower(): v for k, v in obj.items()}


def _text(value: Any, name: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise invalid_value(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise invalid_value(f"{name} must be a string")
    text = value.strip()
    if not text:
        if required:
            raise invalid_value(f"{name} is required")
        return None
    return text


def _required_text(value: Any, name: str) -> str:
    text = _text(value, name, required=True)
    assert text is not None  # _text raises for a required value that is missing
    return text


def _bool(value: Any, name: str) -> bool:
    # Some directories (Entra ID) send booleans as the strings "True"/"False".
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_value(f"{name} must be a boolean")


def _email_of(emails: Any) -> str | None:
    if emails is None:
        return None
    if isinstance(emails, dict):
        emails = [emails]
    if not isinstance(emails, list) or not all(isinstance(e, dict) for e in emails):
        raise invalid_value("emails must be a list of objects with a value")
    entries = [_lower_keys(e) for e in emails]
    chosen = next((e for e in entries if e.get("primary") is True), entries[0] if entries else None)
    return _text(chosen.get("value"), "emails.value") if chosen else None


def _display_from_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, dict):
        raise invalid_value("name must be an object")
    parts = _lower_keys(name)
    formatted = _text(parts.get("formatted"), "name.formatted")
    if formatted:
        return formatted
    given = _text(parts.get("givenname"), "name.givenName")
    family = _text(parts.get("familyname"), "name.familyName")
    return " ".join(p for p in (given, family) if p) or None


def _manager_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # Entra ID sends the manager's id alone
        return _text(value, "manager")
    if not isinstance(value, dict):
        raise invalid_value("manager must be an object with a value")
    return _text(_lower_keys(value).get("value"), "manager.value")


def user_state_from(body: Any) -> UserState:
    """A full User (POST, PUT); unknown attributes are ignored, read-only ones (id, meta) too."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    attrs = _lower_keys(body)
    schemas = attrs.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or USER.lower() not in [str(s).lower() for s in schemas]):
        raise ScimError(400, f"schemas must list {USER}", "invalidSyntax")
    user_name = _required_text(attrs.get("username"), "userName")
    enterprise_raw = attrs.get(ENTERPRISE.lower())
    if enterprise_raw is not None and not isinstance(enterprise_raw, dict):
        raise invalid_value(f"{ENTERPRISE} must be an object")
    enterprise = _lower_keys(enterprise_raw or {})
    active = attrs.get("active")
    return UserState(
        user_name=user_name,
        display_name=_text(attrs.get("displayname"), "displayName") or _display_from_name(attrs.get("name")),
        email=_email_of(attrs.get("emails")),
        title=_text(attrs.get("title"), "title"),
        active=True if active is None else _bool(active, "active"),
        external_id=_text(attrs.get("externalid"), "externalId"),
        department=_text(enterprise.get("department"), "department"),
        manager_id=_manager_of(enterprise.get("manager")),
    )


# --- PATCH (RFC 7644 §3.5.2) ------------------------------------------------------------------------

_CORE_PREFIX = USER.lower() + ":"
_ENTERPRISE_PREFIX = ENTERPRISE.lower() + ":"
_PATH = re.compile(
    r"^(?P<attr>[a-z$][a-z0-9_$-]*)(?:\[(?P<filter>[^\]]*)\])?(?:\.(?P<sub>[a-z$][a-z0-9_$-]*))?$", re.IGNORECASE
)
REQUIRED = {"username", "displayname", "emails", "active"}
READ_ONLY = {"id", "meta", "schemas", "groups"}


def _target(path: str) -> tuple[str, str | None]:
    """'urn:...:enterprise:2.0:User:manager.value' -> ('enterprise:manager', 'value');
    'emails[type eq "work"].value' -> ('emails', 'value'); 'name.formatted' -> ('name', 'formatted')."""
    lowered = path.strip().lower()
    scope = ""
    if lowered == ENTERPRISE.lower():
        return "enterprise", None
    if lowered.startswith(_ENTERPRISE_PREFIX):
        scope, lowered = "enterprise:", lowered[len(_ENTERPRISE_PREFIX) :]
    elif lowered.startswith(_CORE_PREFIX):
        lowered = lowered[len(_CORE_PREFIX) :]
    match = _PATH.match(lowered)
    if not match:
        raise ScimError(400, f"{path!r} is not an attribute path", "invalidPath")
    if match.group("filter") is not None and match.group("attr") != "emails":
        raise ScimError(400, f"{path!r}: only emails take a value filter here", "invalidPath")
    return scope + match.group("attr"), match.group("sub")


def _set(state: UserState, target: str, sub: str | None, value: Any) -> UserState:
    if target in READ_ONLY:
        raise ScimError(400, f"{target} is read-only", "mutability")
    if target == "enterprise" and sub is None:
        if not isinstance(value, dict):
            raise invalid_value(f"{ENTERPRISE} must be an object")
        for name, item in value.items():
            state = _set(state, f"enterprise:{str(name).lower()}", None, item)
        return state
    if sub is not None:
        if (target, sub) == ("name", "formatted"):
            return replace(state, display_name=_text(value, "name.formatted", required=True))
        if (target, sub) in (("emails", "value"), ("enterprise:manager", "value")):
            value = {"value": value}
        elif target == "name":
            return state  # other name parts are not kept
        else:
            raise ScimError(400, f"{target}.{sub} is not an attribute this service keeps", "invalidPath")
    if target == "username":
        return replace(state, user_name=_required_text(value, "userName"))
    if target == "displayname":
        return replace(state, display_name=_text(value, "displayName", required=True))
    if target == "name":
        return replace(state, display_name=_display_from_name(value) or state.display_name)
    if target == "emails":
        email = _email_of(value)
        if not email:
            raise invalid_value("emails needs a value")
        return replace(state, email=email)
    if target == "title":
        return replace(state, title=_text(value, "title"))
    if target == "active":
        return replace(state, active=_bool(value, "active"))
    if target == "externalid":
        return replace(state, external_id=_text(value, "externalId"))
    if target == "enterprise:department":
        return replace(state, department=_text(value, "department"))
    if target == "enterprise:manager":
        return replace(state, manager_id=_manager_of(value))
    return state  # an attribute this service does not keep: ignored


def _remove(state: UserState, target: str, sub: str | None) -> UserState:
    if target in READ_ONLY:
        raise ScimError(400, f"{target} is read-only", "mutability")
    if target in REQUIRED or (target, sub) == ("name", "formatted"):
        raise ScimError(400, f"{target} is required and cannot be removed", "mutability")
    if target == "enterprise" and sub is None:
        return replace(state, department=None, manager_id=None)
    if sub is not None and (target, sub) != ("enterprise:manager", "value"):
        if target == "name":
            return state
        raise ScimError(400, f"{target}.{sub} is not an attribute this service keeps", "invalidPath")
    if target == "title":
        return replace(state, title=None)
    if target == "externalid":
        return replace(state, external_id=None)
    if target == "enterprise:department":
        return replace(state, department=None)
    if target == "enterprise:manager":
        return replace(state, manager_id=None)
    return state


def apply_patch(state: UserState, body: Any) -> UserState:
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    attrs = _lower_keys(body)
    schemas = attrs.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP.lower() not in [str(s).lower() for s in schemas]:
        raise ScimError(400, f"schemas must be [{PATCH_OP!r}]", "invalidSyntax")
    operations = attrs.get("operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    for raw in operations:
        if not isinstance(raw, dict):
            raise ScimError(400, "each operation must be an object", "invalidSyntax")
        op_attrs = _lower_keys(raw)
        op = str(op_attrs.get("op", "")).lower()
        path, value = op_attrs.get("path"), op_attrs.get("value")
        if op not in ("add", "replace", "remove"):
            raise invalid_value(f"op must be add, replace or remove (got {op_attrs.get('op')!r})")
        if path is not None and not isinstance(path, str):
            raise ScimError(400, "path must be a string", "invalidPath")
        if op == "remove":
            if not path:
                raise ScimError(400, "remove needs a path", "noTarget")
            state = _remove(state, *_target(path))
            continue
        if "value" not in op_attrs:
            raise invalid_value(f"{op} needs a value")
        if path:
            state = _set(state, *_target(path), value)
            continue
        if not isinstance(value, dict):
            raise invalid_value(f"{op} without a path needs an object value")
        for name, item in value.items():
            state = _set(state, *_target(str(name)), item)
    return state


# --- filters (RFC 7644 §3.4.2.2): `eq` on a few attributes, joined by `and` -------------------------

_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|[^\s()"]+)')
_FILTERABLE = {
    "username": "user_name",
    "externalid": "external_id",
    "id": "profile_id",
    "emails": "email",
    "emails.value": "email",
    "active": "active",
}


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def parse_filter(text: str | None) -> Lookup:
    """`userName eq "a@b.org" and externalId eq "42"`; anything else is an invalidFilter."""
    if text is None or not text.strip():
        return Lookup()
    if len(text) > 1000:
        raise invalid_filter("the filter is too long")
    tokens: list[str] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if not match:
            raise invalid_filter(f"the filter could not be read from {text[position:][:40]!r}")
        tokens.append(match.group(1))
        position = match.end()
    found: dict[str, Any] = {}
    conflicting = False
    position = 0
    while True:
        if position + 3 > len(tokens):
            raise invalid_filter("expected `attribute eq value`")
        attr, op, raw = tokens[position : position + 3]
        name = attr.lower().removeprefix(_CORE_PREFIX)
        if name not in _FILTERABLE:
            raise invalid_filter(
                f"filtering on {attr!r} is not supported (userName, externalId, id, emails.value, active)"
            )
        if op.lower() != "eq":
            raise invalid_filter(f"only the eq operator is supported (got {op!r})")
        value = _filter_value(raw, name)
        key = _FILTERABLE[name]
        if key in found and (
            email_key(str(found[key])) != email_key(str(value))
            if key in ("user_name", "email")
            else found[key] != value
        ):
            conflicting = True
        found[key] = value
        position += 3
        if position == len(tokens):
            break
        if tokens[position].lower() != "and":
            raise invalid_filter(f"only `and` joins comparisons (got {tokens[position]!r})")
        position += 1
    return Lookup(conflicting=conflicting, **found)


def _filter_value(raw: str, name: str) -> Any:
    if name == "active":
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise invalid_filter("active compares to true or false")
    if not raw.startswith('"'):
        raise invalid_filter(f"{name} compares to a quoted string (got {raw!r})")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise invalid_filter(f"{raw!r} is not a JSON string") from exc
    if not isinstance(value, str):
        raise invalid_filter(f"{raw!r} is not a JSON string")
    return value


def paging(start_index: Any, count: Any) -> tuple[int, int]:
    """1-based startIndex (below 1 counts as 1) and a count capped at MAX_COUNT (negative = 0)."""

    def number(value: Any, name: str, default: int) -> int:
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise invalid_value(f"{name} must be an integer") from exc

    return max(1, number(start_index, "startIndex", 1)), min(MAX_COUNT, max(0, number(count, "count", DEFAULT_COUNT)))


# --- attributes / excludedAttributes (RFC 7644 §3.4.2.5) -------------------------------------------

ALWAYS_RETURNED = {"id", "schemas"}


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise invalid_value("attributes are a comma-separated list")
    return [str(i).strip() for i in items if str(i).strip()]


def _top_level(name: str) -> tuple[str, str | None]:
    """'urn:...:enterprise:2.0:User:department' -> (ENTERPRISE, 'department'); 'name.formatted' -> ('name', None)."""
    lowered = name.lower()
    if lowered == ENTERPRISE.lower():
        return ENTERPRISE, None
    if lowered.startswith(_ENTERPRISE_PREFIX):
        return ENTERPRISE, lowered[len(_ENTERPRISE_PREFIX) :].split(".")[0]
    return lowered.removeprefix(_CORE_PREFIX).split(".")[0], None


def project(resource: dict[str, Any], attributes: Any, excluded: Any) -> dict[str, Any]:
    wanted, unwanted = _names(attributes), _names(excluded)
    if not wanted and not unwanted:
        return resource
    keys = {k.lower(): k for k in resource}
    if wanted:
        out = {k: v for k, v in resource.items() if k in ALWAYS_RETURNED}
        for name in wanted:
            top, sub = _top_level(name)
            if top == ENTERPRISE:
                ext = resource.get(ENTERPRISE)
                if ext:
                    kept = out.setdefault(ENTERPRISE, {})
                    kept.update(ext if sub is None else {k: v for k, v in ext.items() if k.lower() == sub})
            elif top in keys:
                out[keys[top]] = resource[keys[top]]
        if not out.get(ENTERPRISE):
            out.pop(ENTERPRISE, None)
            if "schemas" in out:
                out["schemas"] = [USER]
        return out
    out = dict(resource)
    for name in unwanted:
        top, sub = _top_level(name)
        if top in ALWAYS_RETURNED:
            continue
        if top == ENTERPRISE:
            if sub is None:
                out.pop(ENTERPRISE, None)
            elif ENTERPRISE in out:
                out[ENTERPRISE] = {k: v for k, v in out[ENTERPRISE].items() if k.lower() != sub}
        elif top in keys:
            out.pop(keys[top], None)
    if ENTERPRISE in out and not out[ENTERPRISE]:
        out.pop(ENTERPRISE)
    if ENTERPRISE not in out and "schemas" in out:
        out["schemas"] = [USER]
    return out


# --- discovery (RFC 7644 §4) ----------------------------------------------------------------------


def _attribute(
    name: str,
    type_: str = "string",
    *,
    required: bool = False,
    multi: bool = False,
    uniqueness: str = "none",
    case_exact: bool = False,
    description: str = "",
    sub: list[dict[str, Any]] | None = None,
    reference_types: list[str] | None = None,
) -> dict[str, Any]:
    attr: dict[str, Any] = {
        "name": name,
        "type": type_,
        "multiValued": multi,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": uniqueness,
    }
    if sub is not None:
        attr["subAttributes"] = sub
    if reference_types is not None:
        attr["referenceTypes"] = reference_types
    return attr


USER_SCHEMA: dict[str, Any] = {
    "schemas": [SCHEMA],
    "id": USER,
    "name": "User",
    "description": "A person's profile, as the directory sees it",
    "attributes": [
        _attribute(
            "userName",
            required=True,
            uniqueness="server",
            description="The person's sign-in name; the profile's email unless it is not an address",
        ),
        _attribute("displayName", required=True, description="The profile's display name"),
        _attribute(
            "emails",
            "complex",
            required=True,
            multi=True,
            description="The work email: one is kept (the primary one sent, or the first); verified",
            sub=[_attribute("value", required=True, description="The address")],
        ),
        _attribute("title", description="Job title"),
        _attribute(
            "active",
            "boolean",
            required=True,
            description="false deactivates the profile (as an admin would), true reactivates it",
        ),
    ],
}

ENTERPRISE_SCHEMA: dict[str, Any] = {
    "schemas": [SCHEMA],
    "id": ENTERPRISE,
    "name": "EnterpriseUser",
    "description": "Enterprise User",
    "attributes": [
        _attribute("department", description="Department"),
        _attribute(
            "manager",
            "complex",
            description="The person's manager (a User of this service)",
            sub=[
                _attribute("value", description="The manager's id"),
                _attribute(
                    "$ref", "reference", reference_types=["User"], case_exact=True, description="The manager's URI"
                ),
            ],
        ),
    ],
}


def _meta_schemas() -> list[dict[str, Any]]:
    text = resources.files(__package__).joinpath("scim_meta_schemas.json").read_text(encoding="utf-8")
    loaded: list[dict[str, Any]] = json.loads(text)
    return loaded


def schemas(base_url: str) -> list[dict[str, Any]]:
    return [
        {**s, "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{s['id']}"}}
        for s in (USER_SCHEMA, ENTERPRISE_SCHEMA, *_meta_schemas())
    ]


def resource_types(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "People (profiles)",
            "schema": USER,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/User"},
        }
    ]


def service_provider_config(base_url: str) -> dict[str, Any]:
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The SCIM_TOKEN setting, sent as `Authorization: Bearer ...`",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base_url}/ServiceProviderConfig"},
    }


def list_response(resources_: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources_),
        "Resources": resources_,
    }
