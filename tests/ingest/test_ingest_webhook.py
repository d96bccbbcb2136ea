"""The webhook parser against spec/events.md: one test per quirk of the field table."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pyarrow as pa
import pytest
from ingest_helpers import ACCOUNT_ID, DROP, INGESTED_AT, SECRET, SIGNED_VECTOR, event

from seqscore.event_schema import BOUNCE_CLASSES, EVENT_SCHEMA, EVENT_TYPES
from seqscore.ingest.normalise import MESSAGE_EVENTS
from seqscore.ingest.providers import DEFAULT_PROVIDERS
from seqscore.ingest.recipients import hash_recipient
from seqscore.ingest.webhook import BodyError, EventParser, ParsedBatch, parse_webhook_body

Parse = Callable[..., ParsedBatch]
One = Callable[[Any], dict[str, Any]]
Reason = Callable[[Any], str]

UTC = dt.UTC


def raw_of(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["raw"]) if row["raw"] is not None else {}


# -- the table --------------------------------------------------------------------------------


def test_table_matches_event_schema_exactly(parse: Parse) -> None:
    result = parse(event(), event(event="open", sg_event_id="2"))
    assert result.table.schema.equals(EVENT_SCHEMA, check_metadata=True)
    result.table.validate(full=True)
    assert result.table.num_rows == 2


def test_empty_array_gives_empty_table_of_the_schema(parse: Parse) -> None:
    result = parse()
    assert result.table.schema.equals(EVENT_SCHEMA)
    assert result.table.num_rows == 0
    assert result.rejects == []


def test_account_and_ingested_at_come_from_the_caller(one: One) -> None:
    row = one(event())
    assert row["account_id"] == ACCOUNT_ID
    assert row["ingested_at"] == INGESTED_AT


def test_delivered_event_fills_every_column(one: One) -> None:
    row = one(event(status="2.0.0", response="250 OK"))
    assert row["event_id"] == "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA"
    assert row["message_id"].startswith("LRzXl_NHStOGhQ4kofSm_A.")
    assert row["event"] == "delivered"
    assert row["ts"] == dt.datetime(2020, 9, 14, 19, 41, 32, tzinfo=UTC)
    assert row["day"] == dt.date(2020, 9, 14)
    assert row["recipient"] == hash_recipient(SECRET, "someone@example.com")
    assert row["domain"] == "example.com"
    assert row["provider"] == "example.com"
    assert row["status"] == "2.0.0"
    assert row["machine_open"] is False
    assert row["bounce_type"] is None and row["bounce_class"] is None
    assert raw_of(row) == {
        "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
        "response": "250 OK",
    }


def test_rows_keep_the_order_of_the_body(parse: Parse) -> None:
    events = [event(sg_event_id=str(i), timestamp=1600000000 + i) for i in range(50)]
    result = parse(*events)
    assert result.table.column("event_id").to_pylist() == [str(i) for i in range(50)]


# -- email ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MESSAGE_EVENTS))
def test_email_is_required_for_message_events(reason: Reason, name: str) -> None:
    assert reason(event(event=name, email=DROP)) == 'missing "email"'


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_email_null_or_blank_counts_as_missing(reason: Reason, blank: Any) -> None:
    assert reason(event(email=blank)) == 'missing "email"'


def test_email_not_required_for_account_status_change(one: One) -> None:
    row = one({"event": "account_status_change", "timestamp": 1600112492,
               "type": "compliance_suspend"})
    assert row["recipient"] is None and row["domain"] is None and row["provider"] is None
    assert raw_of(row) == {"type": "compliance_suspend"}


def test_email_is_trimmed_and_lower_cased_before_hashing(parse: Parse) -> None:
    result = parse(event(email="  Someone@EXAMPLE.com\t"), event(email="someone@example.com"))
    first, second = result.table.to_pylist()
    assert first["recipient"] == second["recipient"] == hash_recipient(
        SECRET, "someone@example.com")
    assert first["domain"] == "example.com"


@pytest.mark.parametrize("bad", ["no-at-sign", "@example.com", "someone@"])
def test_email_without_local_part_at_and_domain_is_rejected(reason: Reason, bad: str) -> None:
    assert reason(event(email=bad)) == 'invalid "email": expected local-part@domain'


@pytest.mark.parametrize("bad", [5, True, ["a@b.c"], {"a": "b"}])
def test_email_of_the_wrong_type_is_rejected(reason: Reason, bad: Any) -> None:
    assert reason(event(email=bad)).startswith('"email" is not a string')


def test_rejected_email_reason_never_quotes_the_address(reason: Reason) -> None:
    assert "Secret.Person" not in reason(event(email="Secret.Person-example.com"))


def test_recipient_is_stored_only_as_a_keyed_hash(one: One) -> None:
    row = one(event(email="Someone@Example.com"))
    assert len(row["recipient"]) == 32
    int(row["recipient"], 16)
    other = EventParser(bytes(32)).parse(msgspec.json.encode([event(email="someone@example.com")]),
                                         account_id=1, ingested_at=INGESTED_AT)
    assert other.table.column("recipient")[0].as_py() != row["recipient"]


# -- timestamp --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1600112492, dt.datetime(2020, 9, 14, 19, 41, 32, tzinfo=UTC)),
        ("1600112492", dt.datetime(2020, 9, 14, 19, 41, 32, tzinfo=UTC)),
        (" 1600112492 ", dt.datetime(2020, 9, 14, 19, 41, 32, tzinfo=UTC)),
        ("1600112492.25", dt.datetime(2020, 9, 14, 19, 41, 32, 250000, tzinfo=UTC)),
        (1600112492.5, dt.datetime(2020, 9, 14, 19, 41, 32, 500000, tzinfo=UTC)),
        (1600112492123, dt.datetime(2020, 9, 14, 19, 41, 32, 123000, tzinfo=UTC)),
        ("1600112492123", dt.datetime(2020, 9, 14, 19, 41, 32, 123000, tzinfo=UTC)),
        (10**12, None),  # seconds, so year 33658: out of range
        (10**12 + 1, dt.datetime(2001, 9, 9, 1, 46, 40, 1000, tzinfo=UTC)),
        (0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
    ],
    ids=["int", "string", "padded-string", "decimal-string", "float", "milliseconds",
         "milliseconds-string", "1e12-is-seconds-out-of-range", "above-1e12-is-ms", "epoch"],
)
def test_timestamp_forms(parse: Parse, value: Any, expected: dt.datetime | None) -> None:
    result = parse(event(timestamp=value))
    if expected is None:
        assert [r.reason for r in result.rejects] == [f'"timestamp" out of range: {value}']
    else:
        assert result.table.column("ts")[0].as_py() == expected
        assert result.table.column("day")[0].as_py() == expected.date()


def test_timestamp_is_required(reason: Reason) -> None:
    assert reason(event(timestamp=DROP)) == 'missing "timestamp"'
    assert reason(event(timestamp=None)) == 'missing "timestamp"'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", 'unparsable "timestamp": "abc"'),
        ("", 'unparsable "timestamp": ""'),
        ("1e9", 'unparsable "timestamp": "1e9"'),
        (True, 'unparsable "timestamp": true'),
        ([1600112492], 'unparsable "timestamp": an array'),
        ({"s": 1}, 'unparsable "timestamp": an object'),
        ("9" * 5000, 'unparsable "timestamp": "' + "9" * 40 + '..."'),
    ],
)
def test_unparsable_timestamp_is_rejected(reason: Reason, value: Any, message: str) -> None:
    assert reason(event(timestamp=value)) == message


@pytest.mark.parametrize("value", [-1, "-5", 10**17, 10**30, 1e300])
def test_timestamp_out_of_range_is_rejected(reason: Reason, value: Any) -> None:
    assert reason(event(timestamp=value)).startswith('"timestamp" out of range: ')


# -- event ------------------------------------------------------------------------------------


#: spec/events.md "Event types" and the seven bounce classes, written out here so that a
#: type or class dropped from ``event_schema`` fails a test rather than its own cases.
SPEC_EVENT_TYPES = ["processed", "dropped", "delivered", "deferred", "bounce", "open", "click",
                    "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe",
                    "account_status_change"]
SPEC_BOUNCE_CLASSES = ["Invalid Address", "Technical", "Content", "Reputation",
                       "Frequency/Volume", "Mailbox Unavailable", "Unclassified"]


def test_the_schema_holds_exactly_the_specs_types_and_classes() -> None:
    assert sorted(EVENT_TYPES) == sorted(SPEC_EVENT_TYPES)
    assert sorted(BOUNCE_CLASSES) == sorted(SPEC_BOUNCE_CLASSES)


@pytest.mark.parametrize("name", SPEC_EVENT_TYPES)
def test_every_event_type_is_stored(one: One, name: str) -> None:
    assert one(event(event=name))["event"] == name


@pytest.mark.parametrize("name", SPEC_BOUNCE_CLASSES)
def test_every_bounce_class_is_stored_as_the_spec_spells_it(one: One, name: str) -> None:
    row = one(event(event="bounce", type="bounce", bounce_classification=name.upper()))
    assert row["bounce_class"] == name


@pytest.mark.parametrize("alias", ["spam_report", "spam report", "spamreport", "Spam Report"])
def test_spam_report_spellings_read_spamreport(one: One, alias: str) -> None:
    assert one(event(event=alias))["event"] == "spamreport"


def test_unknown_event_type_is_rejected(reason: Reason) -> None:
    assert reason(event(event="foo")) == 'unknown event type "foo"'


def test_event_is_required(reason: Reason) -> None:
    assert reason(event(event=DROP)) == 'missing "event"'


def test_event_of_the_wrong_type_is_rejected(reason: Reason) -> None:
    assert reason(event(event=3)) == '"event" is not a string: 3'


# -- sg_event_id ------------------------------------------------------------------------------


def test_sg_event_id_is_the_event_id_unbounded(one: One) -> None:
    long_id = "x" * 10_000
    assert one(event(sg_event_id=long_id))["event_id"] == long_id


def test_integer_sg_event_id_is_read_as_text(one: One) -> None:
    assert one(event(sg_event_id=12345))["event_id"] == "12345"


def test_missing_sg_event_id_gets_a_derived_key(one: One) -> None:
    row = one(event(sg_event_id=DROP))
    assert row["event_id"].startswith("h:") and len(row["event_id"]) == 34


def test_derived_key_is_stable_under_key_order_and_whitespace(parse: Parse) -> None:
    fields = event(sg_event_id=DROP, category=["a", "b"], url_offset={"type": "html", "index": 0})
    reordered = dict(reversed(list(fields.items())))
    reordered["url_offset"] = {"index": 0, "type": "html"}
    body = ("[" + json.dumps(fields) + ",\n  " + json.dumps(reordered, indent=2) + "]").encode()
    first, second = parse(body=body).table.column("event_id").to_pylist()
    assert first == second


def test_derived_key_differs_between_events(parse: Parse) -> None:
    ids = parse(event(sg_event_id=DROP), event(sg_event_id=DROP, timestamp=1600112493),
                event(sg_event_id=DROP, event="open")).table.column("event_id").to_pylist()
    assert len(set(ids)) == 3


def test_derived_key_recipe_is_keyed_hmac_of_canonical_json(one: One) -> None:
    import hashlib
    import hmac

    fields = event(sg_event_id=DROP)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()
    digest = hmac.new(SECRET, b"seqscore event id\x00" + canonical, hashlib.sha256).hexdigest()
    assert one(fields)["event_id"] == "h:" + digest[:32]


@pytest.mark.parametrize("unusable", ["", "   ", None, {"id": 1}])
def test_unusable_sg_event_id_gets_a_derived_key(one: One, unusable: Any) -> None:
    row = one(event(sg_event_id=unusable))
    assert row["event_id"].startswith("h:")
    if isinstance(unusable, dict) or unusable:
        assert raw_of(row)["sg_event_id"] == unusable


# -- sg_message_id ----------------------------------------------------------------------------


def test_sg_message_id_is_optional(one: One) -> None:
    assert one(event(sg_message_id=DROP))["message_id"] is None
    assert one(event(sg_message_id=None))["message_id"] is None


def test_sg_message_id_of_the_wrong_type_stays_in_raw(one: One) -> None:
    row = one(event(sg_message_id=7))
    assert row["message_id"] is None
    assert raw_of(row)["sg_message_id"] == 7


# -- type (bounces) ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"),
                         [("bounce", "bounce"), ("blocked", "blocked"), ("Blocked", "blocked")])
def test_bounce_type(one: One, value: str, expected: str) -> None:
    row = one(event(event="bounce", type=value))
    assert row["bounce_type"] == expected
    assert "type" not in raw_of(row)


def test_unknown_bounce_type_is_kept_in_raw(one: One) -> None:
    row = one(event(event="bounce", type="soft"))
    assert row["bounce_type"] is None
    assert raw_of(row)["type"] == "soft"


def test_type_of_other_events_is_theirs_and_kept_in_raw(one: One) -> None:
    row = one({"event": "account_status_change", "timestamp": 1, "type": "blocked"})
    assert row["bounce_type"] is None
    assert raw_of(row)["type"] == "blocked"


# -- bounce_classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(name, name) for name in sorted(BOUNCE_CLASSES)]
    + [(name.upper(), name) for name in sorted(BOUNCE_CLASSES)]
    + [
        ("Technical Failure", "Technical"),
        ("technical failure", "Technical"),
        ("Frequency or Volume Too High", "Frequency/Volume"),
        ("FREQUENCY OR VOLUME TOO HIGH", "Frequency/Volume"),
        ("invalid  address", "Invalid Address"),
    ],
)
def test_bounce_classification(one: One, value: str, expected: str) -> None:
    row = one(event(event="bounce", type="bounce", bounce_classification=value))
    assert row["bounce_class"] == expected
    assert "bounce_classification" not in raw_of(row)


def test_unknown_bounce_classification_is_kept_in_raw(one: One) -> None:
    row = one(event(event="bounce", bounce_classification="Cosmic Rays"))
    assert row["bounce_class"] is None
    assert raw_of(row)["bounce_classification"] == "Cosmic Rays"


# -- status -----------------------------------------------------------------------------------


def test_status_is_stored_and_may_be_absent(one: One) -> None:
    assert one(event(event="bounce", status="5.1.1"))["status"] == "5.1.1"
    assert one(event(status=DROP))["status"] is None


# -- sg_machine_open --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "machine"),
    [(True, True), ("true", True), ("TRUE", True), (1, True), ("1", True),
     (False, False), ("false", False), (0, False), ("0", False), (None, False), (DROP, False)],
    ids=["true", "'true'", "'TRUE'", "1", "'1'", "false", "'false'", "0", "'0'", "null",
         "absent-is-human"],
)
def test_sg_machine_open(one: One, value: Any, machine: bool) -> None:
    row = one(event(event="open", sg_machine_open=value))
    assert row["machine_open"] is machine
    assert "sg_machine_open" not in raw_of(row)


@pytest.mark.parametrize("value", ["maybe", 2, [True]])
def test_unrecognised_sg_machine_open_is_human_and_kept_in_raw(one: One, value: Any) -> None:
    row = one(event(event="open", sg_machine_open=value))
    assert row["machine_open"] is False
    assert raw_of(row)["sg_machine_open"] == value


# -- category, tls, attempt, asm_group_id -----------------------------------------------------


@pytest.mark.parametrize(("value", "stored"),
                         [("cat facts", ["cat facts"]), (["a", "b"], ["a", "b"]), ([], [])])
def test_category_string_or_array(one: One, value: Any, stored: Any) -> None:
    assert raw_of(one(event(category=value)))["category"] == stored


def test_category_of_the_wrong_type_is_tolerated(one: One) -> None:
    assert raw_of(one(event(category=5)))["category"] == 5


@pytest.mark.parametrize(("value", "stored"), [(1, 1), ("1", 1), (0, 0), (True, 1)])
def test_tls_tolerates_number_and_string(one: One, value: Any, stored: int) -> None:
    assert raw_of(one(event(tls=value)))["tls"] == stored


@pytest.mark.parametrize("field", ["attempt", "asm_group_id"])
@pytest.mark.parametrize(("value", "stored"), [(5, 5), ("5", 5), (" 5 ", 5), ("five", "five")])
def test_attempt_and_asm_group_id_read_numeric_strings(
        one: One, field: str, value: Any, stored: Any) -> None:
    assert raw_of(one(event(**{field: value})))[field] == stored


# -- anything else ----------------------------------------------------------------------------


def test_unknown_fields_are_kept_and_never_rejected(one: One) -> None:
    row = one(event(user_id="12345", campaign={"name": "spring", "n": [1, 2]}, weird=None))
    assert raw_of(row) | {} == {
        "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
        "user_id": "12345", "campaign": {"name": "spring", "n": [1, 2]}, "weird": None,
    }


def test_custom_args_on_every_event_are_kept(parse: Parse) -> None:
    events = [event(sg_event_id=str(i), user_id=str(i)) for i in range(5)] + [event()]
    rows = parse(*events).table.to_pylist()
    assert [raw_of(row).get("user_id") for row in rows] == ["0", "1", "2", "3", "4", None]


@pytest.mark.parametrize("odd", [42, event(timestamp=[1]), event(status=5)],
                         ids=["not-an-object", "rejected", "wrong-type-kept"])
def test_custom_args_are_kept_beside_an_odd_element(parse: Parse, odd: Any) -> None:
    result = parse(event(sg_event_id="1", user_id="u1"), odd, event(sg_event_id="3"))
    rows = {row["event_id"]: row for row in result.table.to_pylist()}
    assert raw_of(rows["1"])["user_id"] == "u1"
    assert "user_id" not in raw_of(rows["3"])
    assert result.total == 3


def test_event_with_no_other_fields_has_null_raw(one: One) -> None:
    assert one(event(**{"smtp-id": DROP}))["raw"] is None


def test_raw_is_capped_and_stays_valid_json(parse: Parse) -> None:
    parser = EventParser(SECRET, raw_cap_bytes=200)
    big = event(note="n" * 150, small="s", huge="h" * 5000)
    row = parser.parse(msgspec.json.encode([big]), account_id=1,
                       ingested_at=INGESTED_AT).table.to_pylist()[0]
    assert len(row["raw"].encode()) <= 200
    raw = json.loads(row["raw"])
    assert raw["small"] == "s" and "huge" not in raw
    assert raw["~truncated"] > 5000


def test_raw_cap_zero_stores_no_raw(parse: Parse) -> None:
    parser = EventParser(SECRET, raw_cap_bytes=0)
    result = parser.parse(msgspec.json.encode([event(x=1)]), account_id=1, ingested_at=INGESTED_AT)
    assert result.table.column("raw").to_pylist() == [None]


def test_raw_cap_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="raw_cap_bytes"):
        EventParser(SECRET, raw_cap_bytes=10)


def test_duplicate_keys_read_the_last_value(parse: Parse) -> None:
    body = b'[{"email":"a@b.com","timestamp":1,"event":"open","event":"click","sg_event_id":"x"}]'
    assert parse(body=body).table.column("event").to_pylist() == ["click"]


# -- providers --------------------------------------------------------------------------------


@pytest.mark.parametrize(("domain", "provider"), sorted(DEFAULT_PROVIDERS.items()))
def test_default_provider_table(one: One, domain: str, provider: str) -> None:
    row = one(event(email=f"someone@{domain.upper()}"))
    assert (row["domain"], row["provider"]) == (domain, provider)


def test_unknown_domain_is_its_own_provider(one: One) -> None:
    assert one(event(email="x@mail.example.net"))["provider"] == "mail.example.net"


def test_provider_table_is_a_parameter() -> None:
    body = msgspec.json.encode([event(email="x@corp.example"), event(email="y@gmail.com")])
    mapped = EventParser(SECRET, providers={"corp.example": "corp"}).parse(
        body, account_id=1, ingested_at=INGESTED_AT)
    assert mapped.table.column("provider").to_pylist() == ["corp", "gmail.com"]
    called = EventParser(SECRET, providers=lambda domain: domain.upper()).parse(
        body, account_id=1, ingested_at=INGESTED_AT)
    assert called.table.column("provider").to_pylist() == ["CORP.EXAMPLE", "GMAIL.COM"]


# -- rejects ----------------------------------------------------------------------------------


def test_invalid_events_are_rejected_whole_with_index_and_reason(parse: Parse) -> None:
    body = (b'[{"email":"a@b.com","timestamp":1,"event":"open","sg_event_id":"1"},\n'
            b' {"timestamp": 1, "event": "open"},\n'
            b' 42,\n'
            b' {"email":"a@b.com","timestamp":"abc","event":"open"},\n'
            b' {"email":"a@b.com","timestamp":1,"event":"foo"},\n'
            b' ["a"], "text", null, true]')
    result = parse(body=body)
    assert result.table.num_rows == 1
    assert [(r.index, r.reason) for r in result.rejects] == [
        (1, 'missing "email"'),
        (2, "event is not a JSON object: 42"),
        (3, 'unparsable "timestamp": "abc"'),
        (4, 'unknown event type "foo"'),
        (5, "event is not a JSON object: an array"),
        (6, 'event is not a JSON object: "text"'),
        (7, "event is not a JSON object: null"),
        (8, "event is not a JSON object: true"),
    ]
    assert result.rejects[0].raw == b'{"timestamp": 1, "event": "open"}'
    assert result.rejects[2].text == '{"email":"a@b.com","timestamp":"abc","event":"open"}'
    assert result.total == 9


def test_reject_keeps_the_original_bytes_exactly(parse: Parse) -> None:
    original = b'{ "event" : "nope",  "email":"A@B.com", "x": 1.50 }'
    (reject,) = parse(body=b"[" + original + b"]").rejects
    assert reject.raw == original


def test_first_problem_is_the_reason(reason: Reason) -> None:
    assert reason({"event": "foo"}) == 'unknown event type "foo"'


# -- whole-body errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is empty"),
        (b"   \n", "body is empty"),
        (b"not json", "body is not valid JSON"),
        (b'[{"a":1}', "body is not valid JSON"),
        (b'[{"a":1}] x', "body is not valid JSON"),
        (b'{"email":"a@b.com"}', "body is not a JSON array of events (it is an object)"),
        (b'"text"', "it is a string"),
        (b"12", "it is a number"),
        (b"true", "it is a boolean"),
        (b"null", "it is null"),
        (b"[NaN]", "body is not valid JSON"),
        (b"[Infinity]", "body is not valid JSON"),
        (b'["\xff"]', "body is not valid UTF-8 (byte 2)"),
        (b"\xef\xbb\xbf[]", "body is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_body_errors(parse: Parse, body: bytes, message: str) -> None:
    with pytest.raises(BodyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(body=body)


def test_body_error_is_a_seqscore_error() -> None:
    from seqscore.errors import SeqscoreError

    assert issubclass(BodyError, SeqscoreError)


def test_deep_element_in_a_shallow_body_is_a_reject_not_a_crash(parse: Parse) -> None:
    deep = b"[" * 900 + b"]" * 900
    result = parse(body=b"[" + deep + b"," + msgspec.json.encode(event()) + b"]")
    assert result.table.num_rows == 1
    assert result.rejects[0].index == 0


def test_huge_numbers_and_strings_do_not_crash(parse: Parse) -> None:
    body = (b'[{"email":"a@b.com","timestamp":1,"event":"open","n":' + b"9" * 5000 + b"},"
            + msgspec.json.encode(event(note="x" * 1_000_000)) + b"]")
    result = parse(body=body)
    assert result.total == 2


# -- privacy ----------------------------------------------------------------------------------


def test_no_plaintext_address_anywhere_in_the_table(parse: Parse) -> None:
    address = "jane.doe+news@example.org"
    events = [
        event(email=" Jane.Doe+News@Example.ORG "),
        event(event="bounce", email=address, sg_event_id="b",
              reason=f"550 5.1.1 <{address.upper()}>: Recipient address rejected",
              response=f"bounced {address}"),
        event(event="click", email=address, sg_event_id="c",
              url="https://example.com/u?e=jane.doe%2Bnews%40example.org&x=JANE.DOE+NEWS%40EXAMPLE.ORG"),
        event(email=address, sg_event_id="d", custom_arg=f"for {address}", sg_message_id=DROP),
        event(email=address, sg_event_id=DROP, nested={"list": [address, {"k": address}]}),
        event(email=address, sg_event_id=f"id-{address}", sg_message_id=f"{address}.1",
              status=f"5.0.0 {address}"),
    ]
    body = msgspec.json.encode(events)
    # the same address hidden behind JSON escapes
    body = body[:-1] + b',{"email":"jane.doe+news@example.org","timestamp":1,"event":"open",' \
        b'"note":"jane.doe+news\\u0040example.org"}]'
    result = parse(body=body)
    assert not result.rejects and result.table.num_rows == 7
    forms = {address, address.replace("@", "%40"), "jane.doe%2bnews%40example.org"}
    for column in result.table.columns:
        for value in column.to_pylist():
            text = str(value).lower()
            assert not any(form in text for form in forms), (column, value)
    assert "[recipient]" in result.table.column("raw")[1].as_py()


def test_columns_quoting_the_address_get_a_keyed_stand_in(parse: Parse) -> None:
    address = "someone@example.com"
    quoting = event(sg_event_id=f"evt-{address.upper()}-1", sg_message_id=f"m.{address}",
                    status="5.1.1 someone%40example.com", event="bounce")
    result = parse(quoting, quoting, event(sg_event_id="plain@id", sg_message_id="m@x"))
    first, second, third = result.table.to_pylist()
    for column in ("event_id", "message_id", "status"):
        assert first[column].startswith("h:") and address not in first[column]
        assert first[column] == second[column]  # still de-duplicates
    assert len({first["event_id"], first["message_id"], first["status"]}) == 3
    assert (third["event_id"], third["message_id"]) == ("plain@id", "m@x")


def test_address_scrub_keeps_other_text(one: One) -> None:
    row = one(event(event="bounce", reason="550 <SOMEONE@example.com> unknown", note="keep"))
    assert raw_of(row)["reason"] == "550 <[recipient]> unknown"
    assert raw_of(row)["note"] == "keep"


# -- one-shot function ------------------------------------------------------------------------


def test_parse_webhook_body_is_the_parser_in_one_call() -> None:
    body = msgspec.json.encode([event()])
    result = parse_webhook_body(body, account_id=7, ingested_at=INGESTED_AT, recipient_key=SECRET)
    assert result.table.column("account_id").to_pylist() == [7]
    assert isinstance(result.table, pa.Table)


def test_sendgrid_reference_payload_parses(parse: Parse) -> None:
    vector = json.loads(SIGNED_VECTOR.read_text())
    row = parse(body=vector["payload"].encode()).table.to_pylist()[0]
    assert row["event"] == "dropped"
    assert raw_of(row)["reason"] == "Bounced Address"
