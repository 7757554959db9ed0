"""JSON log records: KumoMTA field names, the bounded buffer, the writer, the classifier."""

from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from mta.log_segments import read_lines, segment_files
from mta.logs import (
    DEFAULT_BOUNCE_RULES,
    BounceClassifier,
    PeerAddress,
    RecordLog,
    classify_bounce,
    response_fields,
)
from mta.replies import S250_QUEUED, S451_LOCAL_ERROR, S550_RELAY_DENIED, Reply

NODEID = "557f3ad4-2c8c-11ee-976e-782d7e12e173"
# Every field of KumoMTA's JsonLogRecord that this node emits (docs/reference/log_record.md).
KUMO_FIELDS = {
    "type",
    "id",
    "sender",
    "recipient",
    "queue",
    "site",
    "size",
    "response",
    "peer_address",
    "timestamp",
    "created",
    "num_attempts",
    "bounce_classification",
    "egress_pool",
    "egress_source",
    "source_address",
    "provider",
    "feedback_report",
    "meta",
    "headers",
    "delivery_protocol",
    "reception_protocol",
    "nodeid",
    "tls_cipher",
    "tls_protocol_version",
}


def _collecting(log: RecordLog) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    log.add_listener(seen.append)
    return seen


def _delivery(log: RecordLog, **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "id": "1d98076abbbc11ed940250ebf67f93bd",
        "sender": "user@sender.example.com",
        "recipient": "user@recipient.example.com",
        "response": S250_QUEUED,
    }
    fields.update(overrides)
    log.record("Delivery", **fields)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_record_has_every_kumomta_field_with_kumomta_types() -> None:
    log = RecordLog(nodeid=NODEID, stdout=False)
    seen = _collecting(log)
    before = int(time.time())
    log.record(
        "Delivery",
        id="abc",
        sender="s@example.com",
        recipient="r@example.net",
        queue="campaign:tenant@example.net",
        site="ip-1->mx.example.net",
        size=1047,
        response=Reply(250, "2.0.0", "OK ids=8a54"),
        command=".",
        peer_address=PeerAddress("mx.example.net.", "192.0.2.7"),
        created=1678069691.75,
        num_attempts=2,
        egress_pool="pool0",
        egress_source="ip-1",
        meta={"tenant": "t1", "n": 3},
        headers={"Subject": "hi"},
        reception_protocol="HTTP",
        delivery_protocol="ESMTP",
        tls_cipher="TLS_AES_256_GCM_SHA384",
        tls_protocol_version="TLSv1.3",
    )
    [entry] = seen
    assert set(entry) == KUMO_FIELDS
    assert entry["type"] == "Delivery"
    assert (entry["id"], entry["sender"], entry["recipient"]) == (
        "abc",
        "s@example.com",
        "r@example.net",
    )
    assert (entry["queue"], entry["site"], entry["size"]) == (
        "campaign:tenant@example.net",
        "ip-1->mx.example.net",
        1047,
    )
    assert entry["response"] == {
        "code": 250,
        "enhanced_code": {"class": 2, "subject": 0, "detail": 0},
        "content": "OK ids=8a54",
        "command": ".",
    }
    assert entry["peer_address"] == {"name": "mx.example.net.", "addr": "192.0.2.7"}
    assert isinstance(entry["timestamp"], int) and entry["timestamp"] >= before
    assert entry["created"] == 1678069691  # whole seconds, like KumoMTA's ts_seconds
    assert entry["num_attempts"] == 2
    assert entry["bounce_classification"] == "Uncategorized"
    assert (entry["egress_pool"], entry["egress_source"]) == ("pool0", "ip-1")
    assert entry["provider"] is None and entry["feedback_report"] is None
    assert entry["meta"] == {"tenant": "t1", "n": 3}
    assert entry["headers"] == {"Subject": "hi"}
    assert (entry["reception_protocol"], entry["delivery_protocol"]) == ("HTTP", "ESMTP")
    assert entry["nodeid"] == NODEID
    assert entry["tls_cipher"] == "TLS_AES_256_GCM_SHA384"
    assert entry["tls_protocol_version"] == "TLSv1.3"


def test_defaults_are_kumomta_shaped() -> None:
    log = RecordLog(nodeid=NODEID, stdout=False)
    seen = _collecting(log)
    log.record("Reception", id="x", sender="s@example.com", response=S250_QUEUED)
    [entry] = seen
    assert entry["recipient"] == ""  # a string in KumoMTA, never null
    assert entry["peer_address"] is None
    assert entry["created"] == entry["timestamp"]
    assert entry["meta"] == {} and entry["headers"] == {}
    assert entry["egress_pool"] is None and entry["response"]["command"] is None


def test_response_fields_without_enhanced_code() -> None:
    assert response_fields(Reply(554, "", "go away"), "RCPT TO") == {
        "code": 554,
        "enhanced_code": None,
        "content": "go away",
        "command": "RCPT TO",
    }
    assert response_fields(Reply(550, "5.1.10", "null MX"))["enhanced_code"] == {
        "class": 5,
        "subject": 1,
        "detail": 10,
    }


def test_peer_address_accepts_any_object_with_name_and_addr() -> None:
    @dataclass(frozen=True)
    class EnginePeer:
        name: str
        addr: str

    log = RecordLog(nodeid=NODEID, stdout=False)
    seen = _collecting(log)
    _delivery(log, peer_address=EnginePeer("mx1.example.net.", "2001:db8::1"))
    assert seen[0]["peer_address"] == {"name": "mx1.example.net.", "addr": "2001:db8::1"}


def test_rejection_record() -> None:
    log = RecordLog(nodeid=NODEID, stdout=False)
    seen = _collecting(log)
    log.rejection(
        sender=None,
        recipient="r@example.net",
        reply=S550_RELAY_DENIED,
        command="RCPT TO",
        peer_address="198.51.100.4",
    )
    [entry] = seen
    assert entry["type"] == "Rejection"
    assert (entry["id"], entry["sender"], entry["recipient"]) == ("", "", "r@example.net")
    assert entry["reception_protocol"] == "ESMTP"
    assert entry["response"]["code"] == 550
    assert entry["response"]["command"] == "RCPT TO"
    assert entry["peer_address"] == {"name": "", "addr": "198.51.100.4"}


def _file_bytes(directory: Path) -> bytes:
    """Every line of the record files (segments, compressed or not) under `directory`."""
    return b"".join(line for path in segment_files(directory) for line in read_lines(path))


async def test_record_goes_to_the_file_as_one_json_line(tmp_path: Path) -> None:
    directory = tmp_path / "logs" / "node-0"  # created on first write
    log = RecordLog(nodeid=NODEID, stdout=False, path=directory)
    seen = _collecting(log)
    await log.start()
    _delivery(log)
    await log.close()
    raw = _file_bytes(directory)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert orjson.loads(raw) == seen[0]
    assert log.written == 1 and log.dropped == 0


async def test_file_is_appended_across_instances(tmp_path: Path) -> None:
    for attempt in range(2):
        log = RecordLog(nodeid=NODEID, stdout=False, path=tmp_path)
        await log.start()
        _delivery(log, num_attempts=attempt)
        await log.close()
    lines = _file_bytes(tmp_path).splitlines()
    assert [orjson.loads(line)["num_attempts"] for line in lines] == [0, 1]


async def test_stream_gets_one_line_per_record_in_order() -> None:
    stream = io.StringIO()
    log = RecordLog(nodeid=NODEID, stream=stream)
    await log.start()
    for n in range(50):
        _delivery(log, size=n)
    await log.close()
    assert [entry["size"] for entry in _lines(stream)] == list(range(50))
    assert log.written == 50


async def test_full_buffer_counts_drops_and_never_blocks() -> None:
    stream = io.StringIO()
    log = RecordLog(nodeid=NODEID, stream=stream, max_buffer=3)
    seen = _collecting(log)
    for n in range(5):  # no writer running: the buffer fills up
        _delivery(log, size=n)
    assert (log.buffered, log.dropped) == (3, 2)
    assert len(seen) == 5  # listeners see every record, dropped or not
    await log.close()
    assert [entry["size"] for entry in _lines(stream)] == [0, 1, 2]
    assert log.written == 3


async def test_records_before_start_are_flushed_by_close_without_start() -> None:
    stream = io.StringIO()
    log = RecordLog(nodeid=NODEID, stream=stream)
    _delivery(log)
    await log.close()
    assert len(_lines(stream)) == 1


async def test_records_before_start_are_written_once_started() -> None:
    stream = io.StringIO()
    log = RecordLog(nodeid=NODEID, stream=stream)
    _delivery(log, size=1)
    await log.start()
    _delivery(log, size=2)
    await log.close()
    assert [entry["size"] for entry in _lines(stream)] == [1, 2]


async def test_records_after_close_are_kept_for_the_next_close() -> None:
    stream = io.StringIO()
    log = RecordLog(nodeid=NODEID, stream=stream)
    await log.start()
    await log.close()
    _delivery(log)
    assert log.buffered == 1
    await log.close()  # idempotent, and flushes the late record
    await log.close()
    assert len(_lines(stream)) == 1


class _SlowStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writer_threads: set[int] = set()

    def write(self, text: str) -> int:
        self.writer_threads.add(threading.get_ident())
        return super().write(text)


async def test_writes_happen_off_the_event_loop_thread() -> None:
    stream = _SlowStream()
    log = RecordLog(nodeid=NODEID, stream=stream)
    await log.start()
    _delivery(log)
    await log.close()
    assert stream.writer_threads
    assert threading.get_ident() not in stream.writer_threads


class _BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError("stdout closed")


async def test_write_error_is_counted_and_writer_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RecordLog(nodeid=NODEID, stream=_BrokenStream())
    await log.start()
    _delivery(log)
    with caplog.at_level(logging.ERROR, logger="mta.logs"):
        await log.close()
    assert (log.write_errors, log.written) == (1, 0)
    assert "writing log records failed" in caplog.text


async def test_broken_stdout_does_not_stop_the_file(tmp_path: Path) -> None:
    log = RecordLog(nodeid=NODEID, stream=_BrokenStream(), path=tmp_path)
    await log.start()
    _delivery(log)
    await log.close()
    assert log.write_errors == 1
    assert len(_file_bytes(tmp_path).splitlines()) == 1


async def test_listeners_cannot_fail_the_caller_or_alter_the_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    log = RecordLog(nodeid=NODEID, stream=stream)

    def broken(entry: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    def mutating(entry: dict[str, Any]) -> None:
        entry["type"] = "Bounce"

    log.add_listener(broken)
    log.add_listener(mutating)
    seen = _collecting(log)
    with caplog.at_level(logging.ERROR, logger="mta.logs"):
        _delivery(log)
    assert len(seen) == 1 and log.buffered == 1
    assert "listener" in caplog.text
    await log.close()
    assert _lines(stream)[0]["type"] == "Delivery"


async def test_unserialisable_meta_degrades_to_text() -> None:
    stream = io.StringIO()
    log = RecordLog(nodeid=NODEID, stream=stream)
    _delivery(log, meta={"path": Path("/spool/x")})
    await log.close()
    assert _lines(stream)[0]["meta"] == {"path": "/spool/x"}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply(550, "5.1.1", "The email account that you tried to reach does not exist"),
            "InvalidRecipient",
        ),
        (Reply(550, "5.1.0", "Address rejected"), "InvalidRecipient"),
        (Reply(550, "", "Requested action not taken: no such user here"), "InvalidRecipient"),
        (Reply(554, "", "delivery error: user unknown"), "InvalidRecipient"),
        (Reply(550, "5.1.2", "Host unknown"), "BadDomain"),
        (Reply(556, "5.1.10", "Recipient domain does not accept mail (null MX)"), "BadDomain"),
        (Reply(550, "", "domain not found"), "BadDomain"),
        (
            Reply(554, "5.7.1", "Service unavailable; client host blocked using zen.spamhaus.org"),
            "SpamBlock",
        ),
        (Reply(550, "5.7.1", "Our system has detected poor IP reputation"), "SpamBlock"),
        (Reply(550, "5.7.1", "Message rejected: looks like spam"), "SpamContent"),
        (
            Reply(550, "5.7.26", "Unauthenticated email is not accepted (DMARC)"),
            "AuthenticationFailed",
        ),
        (Reply(550, "5.7.1", "Relaying denied"), "RelayDenied"),
        (Reply(550, "5.7.0", "Message rejected"), "PolicyRelated"),
        (Reply(554, "", "rejected by local policy"), "PolicyRelated"),
        (Reply(552, "5.2.2", "Mailbox full"), "QuotaIssues"),
        (Reply(452, "", "user over quota"), "QuotaIssues"),
        (Reply(551, "5.4.7", "Delivery time expired"), "MessageExpired"),
        (Reply(451, "4.4.1", "No answer from host"), "NoAnswerFromHost"),
        (Reply(421, "", "connection refused by 192.0.2.1"), "NoAnswerFromHost"),
        (Reply(451, "", "connect to mx.example.net timed out"), "NoAnswerFromHost"),
        (Reply(421, "4.4.2", "Connection dropped"), "BadConnection"),
        (Reply(451, "", "connection reset by peer"), "BadConnection"),
        (Reply(554, "5.4.6", "Mail loop detected"), "RoutingErrors"),
        (Reply(450, "", "Greylisted, try again later"), "TransientFailure"),
        (Reply(451, "4.3.0", "Local error in processing"), "Uncategorized"),
        (Reply(250, "2.0.0", "OK user unknown"), "Uncategorized"),  # successes never classify
    ],
)
def test_classifier_table(reply: Reply, expected: str) -> None:
    assert classify_bounce(reply) == expected


def test_classifier_rules_are_data_and_first_class_wins() -> None:
    classifier = BounceClassifier({"Mine": [r"^550 .*custom"], "Other": [r"custom"]})
    assert classifier.classify(Reply(550, "", "a custom block")) == "Mine"
    assert classifier.classify(Reply(451, "", "custom")) == "Other"
    assert classifier.classify(S451_LOCAL_ERROR) == "Uncategorized"
    assert next(iter(DEFAULT_BOUNCE_RULES)) == "SpamContent"
