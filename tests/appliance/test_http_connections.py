"""Issue 15, HTTP: what outside attackers did to the HTTP endpoint, each replayed against the real service
(gate, endpoint loop, pages, recording) over in-memory connections on the virtual clock."""

from __future__ import annotations

import asyncio
import datetime
import io
import os
import re
import ssl
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appliance import pki
from appliance.config import Limits
from outcomes.category import Category
from tests import virtual_time
from tests.appliance.memory_service import WALL, Client, MemoryService, TlsClient, get, start_memory_service
from tests.appliance.test_http import _split, mutated_requests

LIMITS = replace(Limits(), ledger_region_bytes=128 * 1024)
T = TypeVar("T")


# -- four inputs raised inside the HTTP layer -------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        b"GET /proof?a&b&c&d&challenge=x HTTP/1.1\r\nHost: x\r\n\r\n",  # more query fields than parse_qs allowed
        b"GET http://[/ HTTP/1.1\r\nHost: x\r\n\r\n",  # urlsplit: invalid IPv6 URL
        b"GET //[x HTTP/1.1\r\nHost: x\r\n\r\n",  # urlsplit again, on a netloc-looking path
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n",  # "²".isdigit(), but int("²") raises
    ],
    ids=["query-fields", "absolute-url", "double-slash", "superscript-length"],
)
def test_four_inputs_that_raised_inside_the_http_layer_get_a_response(tmp_path: Path, bad: bytes) -> None:
    """Each used to end the connection with no response, recorded as internal-error, taking the request
    already served on the connection with it."""

    async def scenario() -> tuple[list[int], MemoryService]:
        running = await start_memory_service(tmp_path, LIMITS)
        client = running.connect("198.51.100.1")
        client.send(get("/nope") + bad)
        client.close()
        statuses = await client.responses()
        await running.settle()
        await running.service.stop()
        return statuses, running

    statuses, running = virtual_time.run(scenario())
    assert statuses[0] == 404
    assert len(statuses) == 2
    (outcome,) = running.outcomes
    assert outcome.category in (Category.SERVED, Category.BAD_REQUEST), outcome
    assert "1 requests" in outcome.reason or "2 requests" in outcome.reason  # the page served before is kept


def test_a_bare_lf_request_is_answered_at_once(tmp_path: Path) -> None:
    """RFC 9112 §2.2 (a recipient may take a bare LF as a line terminator): several attack tools send them,
    and such a request used to wait for the 10 s request timeout and a 408."""

    async def scenario() -> tuple[int | None, float]:
        running = await start_memory_service(tmp_path, LIMITS)
        loop = asyncio.get_running_loop()
        started = loop.time()
        client = running.connect("198.51.100.1")
        client.send(b"\r\nGET /nope HTTP/1.1\nHost: x\n\n")
        answer = await client.response()
        took = loop.time() - started
        await running.service.stop()
        return (answer[0] if answer else None), took

    status, took = virtual_time.run(scenario())
    assert (status, took) == (404, 0.0)


# -- a connection slot can be held for about 50 minutes ---------------------------------------------------


async def _trickle(client: Client, every: float, *, limit: int = 200) -> list[dict[str, str]]:
    """One request every `every` seconds (under the idle timeout) until the service closes: each
    response's headers."""
    answers = []
    for _ in range(limit):
        client.send(get("/nope"))
        answer = await client.response()
        if answer is None:
            break
        answers.append(answer[1])
        if answer[1]["connection"] == "close":
            break
        await asyncio.sleep(every)
    return answers


def test_a_connection_slot_is_not_held_for_50_minutes(tmp_path: Path) -> None:
    """One request every 28 s stays under the 30 s idle timeout, and 100 requests were allowed per
    connection: about 46 minutes in one slot. The connection's lifetime now bounds it."""

    async def scenario() -> tuple[list[dict[str, str]], MemoryService]:
        running = await start_memory_service(tmp_path, LIMITS)
        answers = await _trickle(running.connect("198.51.100.1"), 28.0)
        await running.settle()
        await running.service.stop()
        return answers, running

    answers, running = virtual_time.run(scenario())
    (outcome,) = running.outcomes
    assert outcome.at <= 5 * 60, outcome  # closed by the service within minutes of accept, not 46
    assert len(answers) < 20
    assert outcome.category is Category.SERVED
    assert "lifetime" in outcome.reason


def test_a_request_under_way_when_the_lifetime_ends_is_answered_with_connection_close(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[dict[str, str]], MemoryService]:
        running = await start_memory_service(tmp_path, LIMITS)
        client = running.connect("198.51.100.1")
        answers = await _trickle(client, 28.0, limit=4)  # at t = 0, 28, 56 and 84; then it waits to 112
        await asyncio.sleep(1)
        request = get("/nope")
        client.send(request[:10])  # t = 113 (under the idle timeout): under way ...
        await asyncio.sleep(8)
        client.send(request[10:])  # ... and complete at t = 121 (under the request timeout), after the lifetime
        last = await client.response()
        assert last is not None
        answers.append(last[1])
        assert await client.response() is None
        await running.settle()
        await running.service.stop()
        return answers, running

    answers, running = virtual_time.run(scenario())
    assert [a["connection"] for a in answers] == ["keep-alive"] * 4 + ["close"]
    (outcome,) = running.outcomes
    assert outcome.category is Category.SERVED
    assert outcome.reason.startswith("5 requests;")
    assert "lifetime" in outcome.reason


FULL = replace(LIMITS, max_connections=4, max_connections_per_source=3)


async def _served_once(running: MemoryService, source: str) -> Client:
    """A keep-alive connection that has been answered once and now waits for its next request."""
    client = running.connect(source)
    client.send(get("/nope"))
    answer = await client.response()
    assert answer is not None
    assert answer[0] == 404
    return client


def test_a_full_table_gives_the_oldest_idle_slot_of_the_biggest_source_to_a_newcomer(tmp_path: Path) -> None:
    """Sixteen sources at the per-source cap could hold all 256 slots and refuse everyone else. Here (four
    slots, three per source) A holds three and B one; newcomer C takes A's oldest idle connection."""

    async def scenario() -> tuple[int | None, list[int | None], MemoryService]:
        running = await start_memory_service(tmp_path, FULL)
        a1, a2, a3 = [await _served_once(running, "A") for _ in range(3)]
        b1 = await _served_once(running, "B")
        newcomer = running.connect("C")
        newcomer.send(get("/nope"))
        answer = await newcomer.response()
        await running.settle()
        after = []
        for client in (a1, a2, a3, b1):
            client.send(get("/nope"))
            reply = await client.response()
            after.append(reply[0] if reply else None)
        await running.service.stop()
        return (answer[0] if answer else None), after, running

    newcomer, after, running = virtual_time.run(scenario())
    assert newcomer == 404  # admitted and served
    assert after == [None, 404, 404, 404]  # A's oldest was closed; the others were not touched
    withdrawn = running.outcomes[0]
    assert (withdrawn.source, withdrawn.category) == ("A", Category.SERVED)
    assert withdrawn.reason == "1 requests; then idle, slot given to a newcomer (table full)"


def test_a_full_table_with_nobody_idle_still_refuses_the_newcomer(tmp_path: Path) -> None:
    async def scenario() -> tuple[int | None, MemoryService]:
        running = await start_memory_service(tmp_path, FULL)
        held = [await _served_once(running, source) for source in ("A", "A", "A", "B")]
        for client in held:
            client.send(b"GET /nope HT")  # a request under way: not idle
        await running.settle()
        newcomer = running.connect("C")
        newcomer.send(get("/nope"))
        answer = await newcomer.response()
        await running.settle()
        await running.service.stop()
        return (answer[0] if answer else None), running

    answer, running = virtual_time.run(scenario())
    assert answer is None
    refused = running.outcomes[0]
    assert (refused.source, refused.category) == ("C", Category.RESOURCE_LIMIT)


def test_a_connection_that_sends_nothing_ends_after_the_request_timeout_not_the_idle_timeout(tmp_path: Path) -> None:
    """A silent connection waited `idle_timeout` (30 s), and one byte just before then bought another
    request timeout: the cheapest way to hold a slot. Its first request is now timed from accept."""

    async def scenario() -> MemoryService:
        running = await start_memory_service(tmp_path, LIMITS)
        running.connect("198.51.100.1")
        trickler = running.connect("198.51.100.2")
        await asyncio.sleep(LIMITS.http_request_timeout - 1)
        trickler.send(b"G")  # under way, but the request's time started at accept
        await asyncio.sleep(30)
        await running.service.stop()
        return running

    running = virtual_time.run(scenario())
    silent, trickler = sorted(running.outcomes, key=lambda outcome: outcome.source)
    assert (silent.category, silent.reason) == (Category.TIMEOUT, "no HTTP request in time")
    assert silent.at == pytest.approx(LIMITS.http_request_timeout)
    assert (trickler.category, trickler.reason) == (Category.TIMEOUT, "HTTP request not completed in time")
    assert trickler.at == pytest.approx(LIMITS.http_request_timeout)


def test_a_table_full_of_silent_connections_gives_the_oldest_of_the_biggest_source_to_a_newcomer(
        tmp_path: Path) -> None:
    """The audit's attack (F1), scaled down: A and B fill the table with connections that never send a byte;
    nobody has been served, so nobody is idle, and the newcomer was refused on every port. Once they are
    `displace_unanswered_after` old, the newcomer takes A's oldest; B, under its share, keeps its one."""
    boot = pki.generate(datetime.datetime.fromtimestamp(WALL, datetime.UTC), os.urandom)

    async def scenario() -> tuple[int | None, int | None, int | None, MemoryService]:
        running = await start_memory_service(tmp_path, FULL, boot.issued())
        running.connect("A", https=True)  # silent in its TLS handshake
        running.connect("A")
        running.connect("A")
        b = running.connect("B")
        await running.settle()
        too_early = running.connect("C")  # the silent ones may still be about to ask
        too_early.send(get("/nope"))
        early = await too_early.response()
        await asyncio.sleep(FULL.displace_unanswered_after)
        newcomer = running.connect("C")
        newcomer.send(get("/nope"))
        answer = await newcomer.response()
        b.send(get("/nope"))
        b_answer = await b.response()
        await running.service.stop()
        return (early[0] if early else None), (answer[0] if answer else None), (
            b_answer[0] if b_answer else None), running

    early, answer, b_answer, running = virtual_time.run(scenario())
    assert early is None
    assert answer == 404  # admitted and served
    refused, displaced = running.outcomes[:2]
    assert (refused.source, refused.category) == ("C", Category.RESOURCE_LIMIT)
    assert (displaced.endpoint, displaced.source, displaced.category) == ("https", "A", Category.RESOURCE_LIMIT)
    assert displaced.reason == "slot given to a newcomer before anything was answered (table full)"
    assert displaced.at == pytest.approx(FULL.displace_unanswered_after)
    assert b_answer == 404  # B, under its share, was not touched
    assert [o.source for o in running.outcomes if o.category is Category.RESOURCE_LIMIT] == ["C", "A"]  # only one


def test_a_connection_whose_response_is_being_sent_is_not_displaced(tmp_path: Path) -> None:
    """Its first request is complete and its answer on the way (the peer is slow to take it): it is being
    served, and the newcomer is refused rather than cut it short."""
    limits = replace(FULL, max_connections=1)

    async def scenario() -> tuple[int | None, MemoryService]:
        running = await start_memory_service(tmp_path, limits)
        slow = running.connect("A")
        side = slow._transport
        side.get_write_buffer_size = lambda: 1  # type: ignore[method-assign]
        assert side._protocol is not None
        side._protocol.pause_writing()  # the peer takes nothing: the response's send waits on it
        slow.send(get("/nope"))
        await asyncio.sleep(limits.displace_unanswered_after + 1)
        newcomer = running.connect("C")
        newcomer.send(get("/nope"))
        answer = await newcomer.response()
        await running.service.stop()
        return (answer[0] if answer else None), running

    answer, running = virtual_time.run(scenario())
    assert answer is None
    refused = running.outcomes[0]
    assert (refused.source, refused.category) == ("C", Category.RESOURCE_LIMIT)
    assert "to displace" in refused.reason


# -- /proof has one shared 20/s limit ---------------------------------------------------------------------


def test_one_pipelining_client_exhausts_only_its_own_proof_bucket(tmp_path: Path) -> None:
    """99 pipelined /proof requests used to take all 20 of the second's signatures, and everyone else got
    429. The wall clock stands still here, so no bucket refills during the test."""

    async def scenario() -> tuple[list[int], int | None]:
        running = await start_memory_service(tmp_path, LIMITS)
        greedy = running.connect("198.51.100.1")
        greedy.send(get("/proof?challenge=mine") * 99)
        greedy.close()
        statuses = await greedy.responses()
        other = running.connect("203.0.113.9")
        other.send(get("/proof?challenge=yours"))
        answer = await other.response()
        await running.service.stop()
        return statuses, (answer[0] if answer else None)

    statuses, other = virtual_time.run(scenario())
    assert len(statuses) == 99
    assert set(statuses) == {200, 429}
    assert statuses.count(200) < 20  # its own bucket ran out, not everyone's
    assert other == 200


def test_an_idle_https_connection_given_to_a_newcomer_closes_with_close_notify(tmp_path: Path) -> None:
    """Over TLS the withdrawn connection ends the ordinary way: its handler sends close_notify, so the
    client sees a clean close rather than a truncation."""
    boot = pki.generate(datetime.datetime.fromtimestamp(WALL, datetime.UTC), os.urandom)
    limits = replace(LIMITS, max_connections=2, max_connections_per_source=2)

    async def scenario() -> tuple[bytes, bytes | type[BaseException], MemoryService]:
        running = await start_memory_service(tmp_path, limits, boot.issued())
        browser = TlsClient(running.connect("A", https=True))
        await browser.handshake()
        first = await browser.get("/nope")
        await _served_once(running, "A")  # the table is full, both of A's connections idle
        newcomer = await _served_once(running, "C")
        ended: bytes | type[BaseException]
        try:
            ended = await browser.read()
        except ssl.SSLError as exc:
            ended = type(exc)
        newcomer.close()
        await running.settle()
        await running.service.stop()
        return first, ended, running

    first, ended, running = virtual_time.run(scenario())
    assert first.startswith(b"HTTP/1.1 404 ")
    assert ended == b""  # ssl's read gives b"" on close_notify (a bare end of stream raises SSLEOFError)
    withdrawn = running.outcomes[0]
    assert (withdrawn.endpoint, withdrawn.source, withdrawn.category) == ("https", "A", Category.SERVED)
    assert "slot given to a newcomer" in withdrawn.reason


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_requests(), st.lists(st.integers(min_value=0, max_value=6000), max_size=4))
@example(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET http://[/ HTTP/1.1\r\nHost: x\r\n\r\n", [])
def test_every_byte_string_gets_a_response_or_a_counted_refusal(data: bytes, cuts: list[int]) -> None:
    """Whatever a client sends, however it is cut up: the connection ends in exactly one recorded outcome,
    never internal-error, and a refused request gets its 4xx (or 505) before the close."""

    async def scenario(directory: Path) -> tuple[list[int], MemoryService]:
        running = await start_memory_service(directory, LIMITS)
        client = running.connect("198.51.100.1")
        for piece in _split(data, cuts):
            client.send(piece)
            await asyncio.sleep(0)
        client.close()
        everything = await client.reader.read()  # HEAD responses have no body: count status lines instead
        await running.settle()
        await running.service.stop()
        return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) [A-Z]", everything)], running

    with tempfile.TemporaryDirectory() as directory:
        statuses, running = virtual_time.run(scenario(Path(directory)))
    (outcome,) = running.outcomes
    assert outcome.category in (Category.SERVED, Category.BAD_REQUEST, Category.RESOURCE_LIMIT), outcome
    if outcome.reason.startswith("HTTP "):  # refused by the parser: answered with that status
        assert statuses[-1] == int(outcome.reason[5:8])
        assert statuses[-1] >= 400


def test_a_close_on_a_second_connection_line_closes_at_once(tmp_path: Path) -> None:
    """Audit F2: the service read the first Connection line only, answered keep-alive and held the connection
    for the idle timeout."""

    async def scenario() -> tuple[list[str], MemoryService]:
        running = await start_memory_service(tmp_path, LIMITS)
        client = running.connect("198.51.100.1")
        client.send(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n")
        answers = []
        while (answer := await client.response()) is not None:
            answers.append(answer[1]["connection"])
        await running.settle()
        await running.service.stop()
        return answers, running

    answers, running = virtual_time.run(scenario())
    assert answers == ["close"]
    (outcome,) = running.outcomes
    assert (outcome.category, outcome.reason, outcome.at) == (Category.SERVED, "1 requests", 0.0)


def test_with_bodies_allowed_a_body_is_never_served_as_a_request(tmp_path: Path) -> None:
    """Audit F3, through the service with `--limit http_max_body=100`: the body (a request for /stats) used to
    be answered as a request of its own."""
    smuggled = b"GET /stats HTTP/1.1\r\nHost: smuggled\r\n\r\n"

    async def scenario() -> tuple[list[int], MemoryService]:
        running = await start_memory_service(tmp_path, replace(LIMITS, http_max_body=100))
        client = running.connect("198.51.100.1")
        client.send(b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled)
        client.send(get("/nope"))
        client.close()
        statuses = await client.responses()
        await running.settle()
        await running.service.stop()
        return statuses, running

    statuses, running = virtual_time.run(scenario())
    assert statuses == [404, 404]  # never the 200 of /stats
    (outcome,) = running.outcomes
    assert (outcome.category, outcome.reason) == (Category.SERVED, "2 requests")


def test_a_body_that_never_arrives_times_out_as_a_request(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], MemoryService]:
        running = await start_memory_service(tmp_path, replace(LIMITS, http_max_body=100))
        client = running.connect("198.51.100.1")
        client.send(b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        statuses = await client.responses()
        await running.settle()
        await running.service.stop()
        return statuses, running

    statuses, running = virtual_time.run(scenario())
    assert statuses == [404, 408]
    (outcome,) = running.outcomes
    assert (outcome.category, outcome.at) == (Category.TIMEOUT, LIMITS.http_request_timeout)


def test_after_a_body_the_next_request_waits_the_idle_timeout_and_has_its_own_request_timeout(tmp_path: Path) -> None:
    """Review R5: a discarded body left the request's start in place, so the keep-alive wait after it was cut to
    `http_request_timeout` from the previous head, and the next request was timed from there too."""
    pause = LIMITS.http_request_timeout + 5  # under idle_timeout

    async def scenario() -> tuple[list[int | None], MemoryService]:
        running = await start_memory_service(tmp_path, replace(LIMITS, http_max_body=100))
        client = running.connect("198.51.100.1")
        client.send(b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        first = await client.response()
        await asyncio.sleep(1)
        client.send(b"67890")  # the body's end, within its request's time
        await asyncio.sleep(pause)
        client.send(b"GET /nope HTTP/1.1\r\n")
        await asyncio.sleep(LIMITS.http_request_timeout - 1)  # its own time, not the first request's
        client.send(b"Host: x\r\nConnection: close\r\n\r\n")
        second = await client.response()
        await running.settle()
        await running.service.stop()
        return [answer[0] if answer else None for answer in (first, second)], running

    statuses, running = virtual_time.run(scenario())
    assert statuses == [404, 404]
    (outcome,) = running.outcomes
    assert (outcome.category, outcome.reason) == (Category.SERVED, "2 requests")


WIF_LINE = b"L1aW4aubDFB7yfras2S1mN3bqg9nwySY8nkoLmJebSLD5BWv3ENZ\n"


@pytest.mark.parametrize("then", [b"\n", b""], ids=["malformed-request-line", "closed-mid-request"])
def test_a_secret_sent_to_https_as_a_request_is_refused_and_never_echoed(tmp_path: Path, then: bytes) -> None:
    """Audit I1: a 10001/10002 peer can point the appliance-as-client at our own 443, which then reads the
    secret, `"<WIF>\\n"`, as an HTTP request. It is refused, and no part of it reaches the recorded reason,
    /stats, the log or the ledger's disk."""
    boot = pki.generate(datetime.datetime.fromtimestamp(WALL, datetime.UTC), os.urandom)
    secret = WIF_LINE.strip()

    async def scenario() -> tuple[bytes, bytes, MemoryService]:
        running = await start_memory_service(tmp_path, LIMITS, boot.issued())
        relay = TlsClient(running.connect("203.0.113.7", https=True))
        await relay.handshake()
        answer = b""
        if then:
            relay.tls.write(WIF_LINE + then)
            answer = await relay.read()
        else:  # the line alone, then the connection ends: the request never completes
            relay.tls.write(WIF_LINE)
            relay._client.send(relay._out.read())
            relay._client.close()
        await running.settle()
        stats = running.connect("198.51.100.9")
        stats.send(get("/stats"))
        page = await stats.response()
        assert page is not None
        stats.close()
        await running.settle()
        await running.service.stop()
        return answer, page[2], running

    answer, stats_page, running = virtual_time.run(scenario())
    if then:
        assert answer.startswith(b"HTTP/1.1 400 "), answer
    (outcome, *_) = [o for o in running.outcomes if o.endpoint == "https"]
    assert outcome.category == Category.BAD_REQUEST, outcome
    log = running.service.log._stream
    assert isinstance(log, io.StringIO)
    disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for fragment in (secret, secret[:12], secret[-12:]):
        assert fragment.decode() not in outcome.reason
        assert fragment not in stats_page
        assert fragment.decode() not in log.getvalue()
        assert fragment not in disk
