"""Every fuzz target, by name: one per input an attacker controls (issue 18). To add one, write its module in
fuzz/targets/ (`fuzz_one`, `seeds`), list it here, and run `python -m fuzz.seeds NAME`."""

from __future__ import annotations

from fuzz.target import Target

TARGETS: tuple[Target, ...] = (
    Target("net-stack", "net_stack", "Ethernet/ARP/IPv4 (fragments, options)/ICMP/UDP frames into a whole Stack "
           "with TCP attached: no internal error, codecs round-trip, sent frames well formed, bounded state",
           "netstack", ("netstack/stack.py", "netstack/ethernet.py", "netstack/arp.py", "netstack/neighbour.py",
                        "netstack/ipv4.py", "netstack/reassembly.py", "netstack/icmp.py", "netstack/udp.py")),
    Target("net-ipv6", "net_ipv6", "IPv6 frames (extension headers, fragments, ICMPv6, neighbour discovery, "
           "router advertisements, UDP, TCP) into a whole dual-stack Stack with TCP attached: no internal error, "
           "codecs round-trip, sent packets well formed (ND at hop limit 255, errors within 1280 bytes), bounded "
           "neighbour cache, router, prefix and address lists and reassembly", "netstack",
           ("netstack/stack6.py", "netstack/ipv6.py", "netstack/icmpv6.py", "netstack/ndp.py",
            "netstack/neighbour6.py", "netstack/slaac.py", "netstack/reassembly.py")),
    Target("net-dhcp", "net_dhcp", "a DHCP server's messages into a Stack configured for DHCP, through renewal "
           "and expiry: no internal error, our messages round-trip, a bound lease is a host address",
           "netstack", ("netstack/dhcp/client.py", "netstack/dhcp/message.py", "netstack/dhcp/states.py")),
    Target("tcp", "tcp", "segments with options into a listening, an established and an actively opened "
           "connection, with timers, user calls and ICMP errors: no internal error, options round-trip, "
           "well-formed output, bounded connections and buffers", "netstack.tcp", ("netstack/tcp",)),
    Target("tls-record", "tls_record", "record framing and TLS 1.3/1.2 protection: typed refusals, framing "
           "accounts for every byte, seal/open round-trip", "tls", ("tls/record.py",)),
    Target("tls-codecs", "tls_codecs", "every handshake message and extension codec: typed refusals, "
           "parse/serialize fixed point, canonical bodies byte-exact", "tls",
           ("tls/messages.py", "tls/extensions.py", "tls/codec.py"), max_len=2048),
    Target("tls-server", "tls_server", "the server engine as port 443 runs it, fed client flights (1.3, 1.2, "
           "HelloRetryRequest): typed refusals, no data or secret before completion, bounded buffers",
           "tls", ("tls/server.py", "tls/connection.py", "tls/record.py"), max_len=8192),
    Target("tls-server-auth", "tls_server_auth", "the server engine as port 10000 runs it (client certificate "
           "required), fed client flights: completion only for a chain the vault accepts and a key the CA's "
           "client leaf holds", "tls", ("tls/server.py", "tls/connection.py", "tls/peer.py"), max_len=8192),
    Target("tls-client", "tls_client", "the client engine as ports 10001/10002 run it, fed server flights (1.3, "
           "1.2, with and without a certificate request): completion only for a chain the vault accepts and a "
           "key one of the CA's server leaves holds", "tls", ("tls/client.py", "tls/connection.py"), max_len=8192),
    Target("x509-der", "x509_der", "the DER walker: typed refusals, accepted input re-encodes to itself, OIDs "
           "round-trip", "tls.x509", ("tls/x509/der.py",)),
    Target("x509-cert", "x509_cert", "certificate parsing: typed refusals, peek agrees with the parse, bounded "
           "renderings", "tls.x509", ("tls/x509/parse.py", "tls/x509/peek.py", "tls/x509/extensions.py",
                                      "tls/x509/names.py", "tls/x509/keys.py"), max_len=8192),
    Target("x509-chain", "x509_chain", "chain validation: the vault's BootCaValidator and a path with an "
           "intermediate: typed refusals, acceptance only for the hierarchy's own leaves", "tls.x509",
           ("tls/x509/validation.py", "tls/x509/path.py", "tls/x509/checks.py", "tls/x509/constraints.py"),
           max_len=16384),
    Target("http", "http", "the HTTP request parser fed in pieces: only HttpError, bounded buffer, requests "
           "survive canonical re-serialization", "appliance", ("appliance/http.py",), max_len=8192),
    Target("ledger-record", "ledger_record", "the ledger record decoder: only RecordError, in-range fields, "
           "decode/encode byte-exact", "appliance", ("appliance/ledger_record.py",)),
    Target("disk-header", "disk_header", "the disk header copies and the rule that picks one: only "
           "DiskDamagedError, copies round-trip, the choice keeps the key and is what unrepaired slots hold",
           "appliance", ("appliance/disk_header.py",)),
)

BY_NAME = {target.name: target for target in TARGETS}


def find(name: str) -> Target:
    try:
        return BY_NAME[name]
    except KeyError:
        raise SystemExit(f"no fuzz target {name!r}; `python -m fuzz list` names them") from None
