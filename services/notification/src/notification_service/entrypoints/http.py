"""HTTP API: the in-app inbox, webhook endpoints (admin) and the delivery log (admin)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from mentorship_contracts.text import SINGLE_LINE, Line, Name
from mentorship_kit.auth import CurrentPrincipal
from mentorship_kit.policy import Policy, policy
from mentorship_kit.problems import NotFound, Unprocessable

from ..application import NotificationUseCases
from .consumers import source_event_types


def service(request: Request) -> NotificationUseCases:
    found: NotificationUseCases = request.app.state.notifications
    return found


App = Annotated[NotificationUseCases, Depends(service)]

inbox_router = APIRouter(prefix="/people/{profile_id}/inbox", tags=["inbox"])
webhook_router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log_router = APIRouter(tags=["delivery log"])


# --- inbox ---------------------------------------------------------------------------------------


class InboxItem(BaseModel):
    item_id: str
    category: str
    title: str
    text: str
    source_event_type: str
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[InboxItem]
    unread_count: int
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page")


def _item(doc: dict[str, Any]) -> InboxItem:
    return InboxItem(
        item_id=doc["_id"],
        category=doc["category"],
        title=doc["title"],
        text=doc["text"],
        source_event_type=doc["source_event_type"],
        created_at=doc["created_at"],
        read_at=doc.get("read_at"),
    )


def _cursor(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(f"{doc['created_at'].isoformat()}|{doc['_id']}".encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, _, item_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), item_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Unprocessable("not a cursor returned by this API", field="cursor") from exc


@inbox_router.get(
    "",
    response_model=InboxPage,
    summary="A page of the person's inbox, newest first",
    openapi_extra=policy(Policy.PERSON),
)
async def list_inbox(
    profile_id: str,
    principal: CurrentPrincipal,
    app: App,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
    unread_only: bool = False,
) -> InboxPage:
    principal.require_self_or_admin(profile_id)
    after = _parse_cursor(cursor) if cursor else None
    docs = await app.inbox.page(profile_id, limit=limit + 1, after=after, unread_only=unread_only)
    more = len(docs) > limit
    docs = docs[:limit]
    return InboxPage(
        items=[_item(d) for d in docs],
        unread_count=await app.inbox.unread_count(profile_id),
        next_cursor=_cursor(docs[-1]) if more else None,
    )


@inbox_router.get("/unread-count", summary="How many inbox items are unread", openapi_extra=policy(Policy.PERSON))
async def unread_count(profile_id: str, principal: CurrentPrincipal, app: App) -> dict[str, int]:
    principal.require_self_or_admin(profile_id)
    return {"unread_count": await app.inbox.unread_count(profile_id)}


@inbox_router.post("/{item_id}/read", summary="Mark one item read (idempotent)", openapi_extra=policy(Policy.PERSON))
async def mark_read(profile_id: str, item_id: str, principal: CurrentPrincipal, app: App) -> dict[str, Any]:
    principal.require_self_or_admin(profile_id)
    changed = await app.inbox.mark_read(profile_id, item_id, app.clock.now())
    if changed is None:
        raise NotFound("inbox item", item_id)
    return {"item_id": item_id, "read": True, "unread_count": await app.inbox.unread_count(profile_id)}


@inbox_router.post("/read-all", summary="Mark every item read", openapi_extra=policy(Policy.PERSON))
async def mark_all_read(profile_id: str, principal: CurrentPrincipal, app: App) -> dict[str, int]:
    principal.require_self_or_admin(profile_id)
    return {"marked": await app.inbox.mark_all_read(profile_id, app.clock.now()), "unread_count": 0}


# --- webhook endpoints -----------------------------------------------------------------------------


class NewEndpoint(BaseModel):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000), SINGLE_LINE] = Field(
        description="http(s) URL that receives POSTed events"
    )
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200), SINGLE_LINE] | None = Field(
        default=None, description="HMAC-SHA256 signing secret; generated when omitted"
    )
    event_types: list[Name] = Field(
        min_length=1, max_length=100, description="event types to receive, or ['*'] for all"
    )
    description: Line = ""


class Endpoint(BaseModel):
    endpoint_id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    consecutive_failures: int
    disabled_reason: str | None
    created_at: datetime


class CreatedEndpoint(Endpoint):
    secret: str = Field(description="shown once: receivers verify `Mentorship-Signature` with it")


def _endpoint(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "endpoint_id": doc["_id"],
        "url": doc["url"],
        "event_types": doc["event_types"],
        "description": doc.get("description", ""),
        "enabled": doc["enabled"],
        "consecutive_failures": doc.get("consecutive_failures", 0),
        "disabled_reason": doc.get("disabled_reason"),
        "created_at": doc["created_at"],
    }


@webhook_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedEndpoint,
    summary="Register a webhook endpoint (admin)",
    openapi_extra=policy(Policy.ADMIN),
)
async def register_endpoint(body: NewEndpoint, principal: CurrentPrincipal, app: App) -> CreatedEndpoint:
    principal.require_admin()
    doc = await app.register_endpoint(
        url=body.url,
        secret=body.secret,
        event_types=body.event_types,
        description=body.description,
        known_types=set(source_event_types()),
    )
    return CreatedEndpoint(**_endpoint(doc), secret=doc["secret"])


@webhook_router.get(
    "", response_model=list[Endpoint], summary="Webhook endpoints (admin)", openapi_extra=policy(Policy.ADMIN)
)
async def list_endpoints(principal: CurrentPrincipal, app: App) -> list[Endpoint]:
    principal.require_admin()
    return [Endpoint(**_endpoint(d)) for d in await app.endpoints.all()]


@webhook_router.get(
    "/{endpoint_id}",
    response_model=Endpoint,
    summary="One webhook endpoint (admin)",
    openapi_extra=policy(Policy.ADMIN),
)
async def get_endpoint(endpoint_id: str, principal: CurrentPrincipal, app: App) -> Endpoint:
    principal.require_admin()
    doc = await app.endpoints.get(endpoint_id)
    if doc is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return Endpoint(**_endpoint(doc))


@webhook_router.post(
    "/{endpoint_id}/enable",
    response_model=Endpoint,
    summary="Re-enable a disabled endpoint and reset its failure count (admin)",
    openapi_extra=policy(Policy.ADMIN),
)
async def enable_endpoint(endpoint_id: str, principal: CurrentPrincipal, app: App) -> Endpoint:
    principal.require_admin()
    return Endpoint(**_endpoint(await app.enable_endpoint(endpoint_id)))


@webhook_router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a webhook endpoint (admin)",
    openapi_extra=policy(Policy.ADMIN),
)
async def delete_endpoint(endpoint_id: str, principal: CurrentPrincipal, app: App) -> Response:
    principal.require_admin()
    if not await app.endpoints.delete(endpoint_id):
        raise NotFound("webhook endpoint", endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- delivery log --------------------------------------------------------------------------------


class Attempt(BaseModel):
    n: int
    at: datetime
    outcome: str
    detail: str | None = None


class Delivery(BaseModel):
    delivery_id: str
    source_event_id: str
    source_event_type: str
    recipient_id: str
    recipient_kind: str
    channel: str
    category: str
    state: str = Field(
        description="pending, held, sending, retrying, delivered, failed, skipped, cancelled, "
        "waiting_for_contact, checking_contact, released"
    )
    reason: str | None
    urgent: bool
    subject: str | None = Field(description="email subject or in-app title (no bodies, no addresses)")
    due_at: datetime | None
    attempts: list[Attempt]
    created_at: datetime
    updated_at: datetime


def _delivery(doc: dict[str, Any]) -> Delivery:
    message = doc.get("message") or {}
    return Delivery(
        delivery_id=doc["_id"],
        source_event_id=doc["source_event_id"],
        source_event_type=doc["source_event_type"],
        recipient_id=doc["recipient_id"],
        recipient_kind=doc.get("recipient_kind", "person"),
        channel=doc["channel"],
        category=doc["category"],
        state=doc["state"],
        reason=doc.get("reason"),
        urgent=bool(doc.get("urgent")),
        subject=message.get("subject") or message.get("title"),
        due_at=doc.get("due_at"),
        attempts=[Attempt(**a) for a in doc.get("attempts") or []],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


@log_router.get(
    "/deliveries",
    response_model=list[Delivery],
    summary="The delivery log, newest first (admin)",
    openapi_extra=policy(Policy.ADMIN),
)
async def delivery_log(
    principal: CurrentPrincipal,
    app: App,
    recipient_id: str | None = None,
    state: str | None = None,
    source_event_id: str | None = None,
    channel: str | None = None,
    before: AwareDatetime | None = Query(default=None, description="only deliveries created before this time"),
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Delivery]:
    principal.require_admin()
    docs = await app.deliveries.log(
        recipient_id=recipient_id,
        state=state,
        source_event_id=source_event_id,
        channel=channel,
        limit=limit,
        before=before,
    )
    return [_delivery(d) for d in docs]


@log_router.get(
    "/deliveries/{delivery_id}",
    response_model=Delivery,
    summary="One delivery (admin)",
    openapi_extra=policy(Policy.ADMIN),
)
async def get_delivery(delivery_id: str, principal: CurrentPrincipal, app: App) -> Delivery:
    principal.require_admin()
    doc = await app.deliveries.get(delivery_id)
    if doc is None:
        raise NotFound("delivery", delivery_id)
    return _delivery(doc)


@log_router.get(
    "/contacts/{profile_id}",
    summary="The contact book entry of a person (admin, debugging)",
    openapi_extra=policy(Policy.ADMIN, "debugging: holds the person's address"),
)
async def get_contact(profile_id: str, principal: CurrentPrincipal, app: App) -> dict[str, Any]:
    principal.require_admin()
    doc = await app.contacts.get(profile_id)
    if doc is None:
        raise NotFound("contact", profile_id)
    doc["profile_id"] = doc.pop("_id")
    return doc


routers = [inbox_router, webhook_router, log_router]
