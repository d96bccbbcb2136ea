"""A SendGrid event as sent, as a typed ``msgspec.Struct``.

``Event`` lists every field SendGrid documents for Event Webhook events. The
fields that become columns, and the few the spec wants read leniently, are
typed with the unions real payloads need (``timestamp: int | float | str``);
the rest are ``msgspec.Raw``: kept byte for byte, never turned into Python
objects, re-encoded as they came into the ``raw`` column. ``None`` is JSON null;
``UNSET`` means the field was absent.

``StrictEvent`` refuses any other field, so a successful decode proves the
event has no custom args and the struct alone holds all of it.
"""

from __future__ import annotations

from typing import Final

import msgspec
from msgspec import UNSET, Raw, UnsetType

_Opt = UnsetType | None


class Event(msgspec.Struct, gc=False):
    """Every documented field of a SendGrid event (others are ignored by this type).

    The parser reads the column fields of a decoded instance, then clears them
    and encodes what remains as ``raw``. ``__init__`` does not check types, so
    an instance may also be built from a plain ``dict`` whose values have any
    type (the parser's slow path): the field rules accept any value.
    """

    # Fields that become columns.
    email: str | _Opt = UNSET
    timestamp: int | float | str | _Opt = UNSET
    event: str | _Opt = UNSET
    sg_event_id: str | int | _Opt = UNSET
    sg_message_id: str | _Opt = UNSET
    type_: str | _Opt = msgspec.field(default=UNSET, name="type")
    bounce_classification: str | _Opt = UNSET
    status: str | _Opt = UNSET
    sg_machine_open: bool | int | str | _Opt = UNSET
    # Kept in ``raw``, read leniently.
    category: str | list[str] | _Opt = UNSET
    tls: bool | int | str | _Opt = UNSET
    attempt: int | str | _Opt = UNSET
    asm_group_id: int | str | _Opt = UNSET
    # Kept in ``raw`` verbatim.
    smtp_id: Raw | UnsetType = msgspec.field(default=UNSET, name="smtp-id")
    reason: Raw | UnsetType = UNSET
    response: Raw | UnsetType = UNSET
    useragent: Raw | UnsetType = UNSET
    ip: Raw | UnsetType = UNSET
    url: Raw | UnsetType = UNSET
    url_offset: Raw | UnsetType = UNSET
    pool: Raw | UnsetType = UNSET
    cert_err: Raw | UnsetType = UNSET
    post_type: Raw | UnsetType = UNSET
    send_at: Raw | UnsetType = UNSET
    sg_content_type: Raw | UnsetType = UNSET
    sg_template_id: Raw | UnsetType = UNSET
    sg_template_name: Raw | UnsetType = UNSET
    template_id: Raw | UnsetType = UNSET
    template_version_id: Raw | UnsetType = UNSET
    marketing_campaign_id: Raw | UnsetType = UNSET
    marketing_campaign_name: Raw | UnsetType = UNSET
    marketing_campaign_version: Raw | UnsetType = UNSET
    marketing_campaign_split_id: Raw | UnsetType = UNSET
    singlesend_id: Raw | UnsetType = UNSET
    singlesend_name: Raw | UnsetType = UNSET
    phase_id: Raw | UnsetType = UNSET
    ab_variation: Raw | UnsetType = UNSET
    ab_phase_id: Raw | UnsetType = UNSET
    mc_stats: Raw | UnsetType = UNSET


class StrictEvent(Event, forbid_unknown_fields=True, gc=False):
    """``Event`` for events without custom args: any other field fails the decode."""


#: JSON name -> attribute name, for every field of ``Event``.
ATTRIBUTE_OF: Final[dict[str, str]] = {
    field.encode_name: field.name for field in msgspec.structs.fields(Event)
}
