"""The web pages (ports 80 and 443): request in, response out, time passed in.

Plain HTML and inline CSS, no scripts and no external resources (the CSP header forbids them anyway), so
the page can be read safely by anyone, including the people attacking it.
"""

from __future__ import annotations

import datetime
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from appliance import svg
from appliance.config import Limits, Ports
from appliance.http import Request, Response
from appliance.markup import escape
from appliance.peers import IPV4, IPV6, OTHER, source_of
from appliance.stats import UNRECORDED, Refusal, Stats
from appliance.vault import Prover
from netstack.ratelimit import TokenBucket, per_second

HTML = "text/html; charset=utf-8"
STATS_REFRESH_SECONDS = 30  # "live" without scripts: the statistics page reloads itself
TEXT = "text/plain; charset=utf-8"
STYLE = """
body{font-family:system-ui,sans-serif;max-width:54rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.8rem}code,pre{background:#f4f4f4;padding:.1rem .3rem}pre{padding:.6rem;overflow-x:auto}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
nav a{margin-right:1rem}svg{max-width:100%;height:auto}
.peer{background:#fdf2d0;border:1px dashed #b9770e;padding:0 .2rem;font-size:.9em}
"""


@dataclass
class Site:
    """The web pages: what they show (proofs, the CA, statistics, the manifest, ports, limits, mode) and the /proof
    rate limiter's buckets, which live as long as the site. Not frozen: `__post_init__` makes those buckets."""

    prover: Prover  # addresses and proofs only: the pages cannot release the key (DESIGN.md rule 5)
    ca_pem: bytes
    stats: Stats
    manifest: bytes | None  # None: this build has no manifest to show (404)
    ports: Ports
    limits: Limits
    mode: str  # e.g. "kernel, tls=stdlib": shown so visitors know what they are attacking
    network_counters: Callable[[], dict[str, int]] = dict  # the network stack's counters since boot

    def __post_init__(self) -> None:
        self._proof_bucket = per_second(self.limits.proof_rate_per_second)
        self._proof_buckets: OrderedDict[str, TokenBucket] = OrderedDict()  # per source, least recent first

    def handle(self, request: Request, now: float, *, source: str = "unknown") -> Response:
        """`source`: the peer's address, whose source's own /proof bucket the request draws on (an IPv6 peer's
        /64 has one bucket: `appliance.peers`; callers that have none, such as tests of the pages, share the
        bucket of "unknown", as the service names a peer it cannot see)."""
        if request.method not in ("GET", "HEAD"):
            return Response(405, TEXT, b"only GET and HEAD\n", (("Allow", "GET, HEAD"),))
        routes = {
            "/": self._index,
            "/stats": self._stats_page,
            "/stats.json": self._stats_json,
            "/ca.pem": lambda: Response(200, "application/x-pem-file", self.ca_pem),
            "/manifest.txt": self._manifest,
        }
        if request.path == "/proof":
            return self._proof(request, now, source)
        page = routes.get(request.path)
        if page is None:
            return Response(404, TEXT, b"not found\n")
        return page()

    def _manifest(self) -> Response:
        if self.manifest is None:
            return Response(404, TEXT, b"no manifest in this build\n")
        return Response(200, TEXT, self.manifest)

    def _proof(self, request: Request, now: float, source: str) -> Response:
        values = [value for name, value in request.query_fields if name == "challenge"]
        if len(values) != 1 or not values[0]:
            return Response(400, TEXT, b"give exactly one non-empty ?challenge=...\n")
        challenge = values[0]
        if len(challenge.encode()) > self.limits.http_max_challenge or not challenge.isprintable():
            limit = self.limits.http_max_challenge
            return Response(400, TEXT, f"challenge: printable, at most {limit} bytes\n".encode())
        if not self._proof_allowed(source, now):
            return Response(429, TEXT, b"too many proofs requested; retry in a second\n", (("Retry-After", "1"),))
        proof = self.prover.proof(challenge, datetime.datetime.fromtimestamp(now, datetime.UTC))
        body = {
            "message": proof.message,
            "address": proof.address_p2wpkh,
            "signature": proof.signature_p2wpkh,
            "address_legacy": proof.address_p2pkh,
            "signature_legacy": proof.signature_p2pkh,
            "format": "BIP-137 signed message (base64); verify with Electrum, or the legacy pair with "
            "Bitcoin Core's verifymessage",
        }
        return Response(200, "application/json", json.dumps(body, indent=1).encode() + b"\n")

    def _proof_allowed(self, source: str, now: float) -> bool:
        """The source's own bucket first, then everyone's: a client pipelining requests spends its own
        tokens, and only a request its own bucket allows can take one of the shared ones. The table is
        bounded (least recently used forgotten): a forgotten source starts again with a full bucket, which
        the shared bucket still bounds."""
        key = source_of(source)
        bucket = self._proof_buckets.pop(key, None) or per_second(self.limits.proof_rate_per_source)
        self._proof_buckets[key] = bucket
        if len(self._proof_buckets) > self.limits.proof_sources_tracked:
            self._proof_buckets.popitem(last=False)
        return bucket.allow(now) and self._proof_bucket.allow(now)

    def _stats_json(self) -> Response:
        data = self.stats.as_json()
        data["network"] = self.network_counters()
        return Response(200, "application/json", json.dumps(data, indent=1).encode() + b"\n")

    def _page(self, title: str, body: str, refresh: int | None = None) -> Response:
        meta_refresh = f'<meta http-equiv="refresh" content="{refresh}">' if refresh is not None else ""
        html = (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>{meta_refresh}'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head>'
            f'<body><nav><a href="/">bounty</a><a href="/stats">statistics</a><a href="/stats.json">stats.json</a>'
            f'<a href="/ca.pem">ca.pem</a><a href="/manifest.txt">manifest.txt</a></nav>{body}</body></html>'
        )
        return Response(200, HTML, html.encode())

    def _index(self) -> Response:
        p = self.ports
        body = f"""
<h1>Piñata: a bitcoin key behind our own TCP/IP, TLS and X.509</h1>
<p>This machine holds the private key of the wallet below. It hands the key over to anyone who completes a
mutually authenticated TLS handshake with a certificate issued by the certificate authority that this machine
generated when it booted. That CA's private key exists only in this process's memory. If you get the key,
the coins are yours: that is the bounty. The blockchain shows whether anyone succeeded.</p>
<h2>The wallet</h2>
<p>Native segwit (P2WPKH): <code>{escape(self.prover.address_p2wpkh)}</code><br>
Legacy (P2PKH), same key: <code>{escape(self.prover.address_p2pkh)}</code><br>
Proof that this machine holds the key: <code>/proof?challenge=YOUR-TEXT</code> returns a BIP-137 signed message
that includes your text.</p>
<h2>Rules</h2>
<ul><li>Anything goes against this machine over the network: every byte you can send reaches code we wrote
(Ethernet, ARP, IPv4, TCP, TLS, X.509, HTTP).</li>
<li>Be kind to others: floods only slow everyone down, and limits are counted, not crashed.</li>
<li>Every connection's outcome is recorded (category, endpoint, time, source address) and shown on the
<a href="/stats">statistics</a> page. The key itself never appears in any log.</li></ul>
<h2>How to attack</h2>
<table><tr><th>port</th><th>what it does</th></tr>
<tr><td>{p.http}</td><td>HTTP: these pages</td></tr>
<tr><td>{p.https}</td><td>HTTPS: the same pages, server certificate from the boot CA, no client certificate</td></tr>
<tr><td>{p.mutual}</td><td>TLS server requiring a client certificate chained to the boot CA; success sends
the key</td></tr>
<tr><td>{p.callback}</td><td>closes your connection and connects back to your address on port {p.callback_target} as
a TLS client (with its client certificate); if your server's chain validates against the boot CA, it sends the
key</td></tr>
<tr><td>{p.reverse}</td><td>starts TLS as the client over your connection; if your server's chain validates, it
sends the key. Short-circuit it to port {p.mutual} through a proxy and watch the key pass, encrypted.</td></tr>
</table>
<p>Running as: <code>{escape(self.mode)}</code>. Built from: <a href="/manifest.txt">manifest.txt</a>.</p>
<h2>The boot CA certificate</h2>
<pre>{escape(self.ca_pem.decode("ascii"))}</pre>
"""
        return self._page("Piñata bounty", body)

    def _stats_page(self) -> Response:
        data = self.stats.as_json()
        carried = self.stats.sources_carried
        older = f"; up to {carried} of them counted by an older version, which could overcount" if carried else ""
        rows = "".join(
            f"<tr><td>{escape(_utc(r.time))}</td><td>{escape(r.endpoint)}</td><td><b>{escape(r.category)}</b></td>"
            f"<td>{self._reason_cell(r)}</td></tr>"
            for r in reversed(self.stats.recent)
        ) or '<tr><td colspan="4">none yet</td></tr>'
        body = f"""
<h1>Statistics</h1>
<p>{data["connections"]} connections from {data["unique_sources"]} {escape(str(data["unique_sources_label"]))}:
this count is {"exact" if data["unique_sources_exact"] else "an estimate"}{older}; {data["successes"]} got the key.</p>
{self._families()}
<h2>Connections over time, per endpoint (cumulative)</h2>
{svg.cumulative_chart(self.stats.chart(), "cumulative connections per endpoint")}
<h2>Refused connections by category</h2>
{svg.bar_chart(self.stats.failures_by_category(), "refused connections by category")}
<h2>Recent refused attempts</h2>
<p>The category is the outcome. The detail may quote what the peer sent: that text is marked
<span class="peer">peer sent</span>, unverified, and cut to {self.limits.stats_peer_text_chars} characters.</p>
<table><tr><th>time (UTC)</th><th>endpoint</th><th>category (outcome)</th><th>detail</th></tr>{rows}</table>
{self._ledger_section()}
{self._network_table()}"""
        return self._page("Piñata statistics", body, refresh=STATS_REFRESH_SECONDS)

    def _families(self) -> str:
        """Connections per address family: the appliance listens on IPv4 and IPv6 alike. IPv4 and IPv6 are
        always named; peers with no address, and connections counted before families were, only when there
        are some."""
        named = {IPV4: "over IPv4", IPV6: "over IPv6", OTHER: "no address", UNRECORDED: "before families were counted"}
        parts = ", ".join(f"{n} {escape(named[f])}" for f, n in self.stats.families.items() if n or f in (IPV4, IPV6))
        return f'<p class="families">Connections per address family: {parts}.</p>'

    def _reason_cell(self, refusal: Refusal) -> str:
        """The appliance's words plain, each peer-sent value labelled as such: an issuer name reading
        "SUCCESS - key sent" must not look like the appliance speaking."""
        return "".join(
            f'<span class="peer" title="sent by the peer, unverified">peer sent: <q>{escape(text)}</q></span>'
            if sent_by_peer else escape(text)
            for text, sent_by_peer in refusal.reason_parts(self.limits.stats_peer_text_chars)
        )

    def _ledger_section(self) -> str:
        """The record's own health: a ledger that lost history says so here, not only in a console line."""
        boot = self.stats.boot_recovery or {}
        integrity = self.stats.integrity
        outcome = str(boot.get("outcome", "unknown"))
        lines = [f"<p>At this boot the ledger was <b>{escape(outcome)}</b>"
                 f" ({boot.get('records', 0)} records read back). Since it was started: "
                 f"{integrity['damaged']} damaged spans, {integrity['torn_tails']} torn tails (power loss or a "
                 f"killed process), {integrity['records_lost']} records known lost "
                 f"(at most {integrity['records_lost_bound']}).</p>"]
        if self.stats.findings:
            rows = "".join(
                "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in (
                    f["seq"], f["kind"], f["region"], f"{f['start']}..{f['end']}",
                    f["records"] if f["records"] is not None else f"up to {f['bound']}",
                    "detail only" if f["totals_kept"] else "yes")) + "</tr>"
                for f in reversed(self.stats.findings)
            )
            lines.append("<table><tr><th>ledger seq</th><th>kind</th><th>region</th><th>bytes</th>"
                         f"<th>records</th><th>counts lost</th></tr>{rows}</table>")
        return "<h2>Ledger integrity</h2>\n" + "\n".join(lines)

    def _network_table(self) -> str:
        """The network stack's counters since boot: malformed frames, floods and probes stop there and never
        become connections, so this is the only place they show."""
        counters = {name: n for name, n in self.network_counters().items() if n}
        if not counters:
            return ""
        rows = "".join(f"<tr><td>{escape(name)}</td><td>{n}</td></tr>" for name, n in sorted(counters.items()))
        head = "<tr><th>counter</th><th>count</th></tr>"
        return f"<h2>Network stack counters since boot</h2>\n<table>{head}{rows}</table>\n"


def _utc(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
