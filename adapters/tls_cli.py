"""Command-line peers over kernel sockets, for testing against real programs (like `openssl s_server -www`
and `s_client`). `python -m adapters.tls_cli server ...` and `... client ...` run them."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from adapters.tls_stream import HandshakeError, TLSProtocol, open_connection
from outcomes.category import Category
from tls.alerts import AlertDescription, alert_name
from tls.client import ClientConnection
from tls.config import NO_VALIDATION_FOR_TESTS, ClientAuth, ClientAuthMode, ClientConfig, ServerConfig
from tls.constants import NamedGroup
from tls.events import AlertReceived, Event, HandshakeComplete, HandshakeFailed
from tls.groups import SUPPORTED_GROUPS
from tls.server import ServerConnection
from tls.signatures import PrivateKey

HANDSHAKE_TIMEOUT = 10.0
MAX_REQUEST = 16 * 1024
"""Largest HTTP request head the test server buffers."""
STDIN_CHUNK = 64 * 1024
"""Most bytes of the client's stdin sent at once (whatever has arrived, up to this)."""
STDIN_QUEUE = 8
"""Chunks of stdin read ahead of the connection."""


def load_chain(path: str) -> tuple[bytes, ...]:
    certs = cx509.load_pem_x509_certificates(Path(path).read_bytes())
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)


def load_key(path: str) -> PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise SystemExit(f"{path}: unsupported key type {type(key).__name__}")
    return key


def parse_group(name: str) -> int:
    try:
        return int(NamedGroup[name.strip().upper()])
    except KeyError:
        raise SystemExit(f"unknown group {name!r}; choose from x25519, secp256r1, secp384r1") from None


def now() -> datetime:
    return datetime.now(UTC)


def describe_failure(event: Event | None, peer_alert: int | None) -> str:
    if isinstance(event, HandshakeFailed):
        return f"handshake failed: sent alert {alert_name(event.alert)} ({event.alert}), " \
               f"category {event.category}: {event.reason}"
    if peer_alert is not None:
        return f"refused: peer alert {alert_name(peer_alert)} ({peer_alert}), category {Category.PEER_ALERT}"
    return f"handshake failed: connection closed, category {Category.CONNECTION_RESET}"


class WebPage(asyncio.Protocol):
    """Answers each HTTP request head with a small 200 page describing the TLS session, then closes."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        if b"\r\n\r\n" not in self._buffer and b"\n\n" not in self._buffer:
            if len(self._buffer) > MAX_REQUEST:
                self._transport.close()
            return
        handshake: HandshakeComplete | None = self._transport.get_extra_info("tls_handshake")
        lines = ["<html><body><pre>", "Piñata TLS test server"]
        if handshake is not None:
            lines += [f"Protocol: {handshake.version}", f"Cipher: {handshake.cipher_suite}",
                      f"Group: {handshake.group}", f"Client certificates: {len(handshake.peer_chain)}"]
        body = ("\n".join([*lines, "</pre></body></html>"]) + "\n").encode()
        head = f"HTTP/1.0 200 ok\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        self._transport.write(head + body)
        self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def server_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.tls_cli server", description="Piñata TLS test server")
    parser.add_argument("--cert", required=True, help="PEM chain, leaf first")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--client-ca", help="PEM trust anchors: require a client certificate chained to them")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--groups", help="comma-separated key exchange groups in preference order "
                        "(e.g. secp384r1 to make X25519-first clients retry)")
    parser.add_argument("--quiet", action="store_true", help="do not log each refused handshake")
    args = parser.parse_args(argv)
    client_auth = None
    if args.client_ca:
        client_auth = ClientAuth(ClientAuthMode.REQUIRED, load_chain(args.client_ca))
    groups = tuple(parse_group(name) for name in args.groups.split(",")) if args.groups else SUPPORTED_GROUPS
    config = ServerConfig(chain=load_chain(args.cert), key=load_key(args.key), random=os.urandom, time=now,
                          client_auth=client_auth, groups=groups)

    def log(event: Event) -> None:
        if isinstance(event, HandshakeFailed) and not args.quiet:
            print(describe_failure(event, None), file=sys.stderr, flush=True)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: TLSProtocol(ServerConnection(config), WebPage(), handshake_timeout=HANDSHAKE_TIMEOUT,
                                on_event=log),
            args.host, args.port, reuse_address=True, backlog=512)
        print(f"listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def client_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.tls_cli client", description="Piñata TLS test client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", help="PEM trust anchors for the server's chain")
    parser.add_argument("--insecure", action="store_true", help="accept any server chain (instead of --ca)")
    parser.add_argument("--cert", help="PEM client chain, leaf first")
    parser.add_argument("--key", help="PEM client private key")
    parser.add_argument("--servername", help="server name to send and to check")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds of silence from the server after which we close")
    args = parser.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    if bool(args.ca) == args.insecure:
        parser.error("give exactly one of --ca and --insecure")
    anchors = load_chain(args.ca) if args.ca else NO_VALIDATION_FOR_TESTS
    config = ClientConfig(random=os.urandom, time=now, anchors=anchors,
                          server_name=args.servername, chain=load_chain(args.cert) if args.cert else (),
                          key=load_key(args.key) if args.key else None)
    sys.exit(asyncio.run(_client(args.host, args.port, config, args.timeout)))


def _read_stdin(loop: asyncio.AbstractEventLoop, chunks: asyncio.Queue[bytes]) -> None:
    """Blocking reads of stdin in a daemon thread (a terminal, pipe or file alike), each chunk handed over as
    soon as it arrives; b"" at end of file. The bounded queue keeps a large file from being read ahead whole.
    The file descriptor is read directly: a daemon thread blocked inside `sys.stdin.buffer` would hold its
    lock and abort the interpreter's shutdown."""
    fd = sys.stdin.fileno()
    while True:
        chunk = os.read(fd, STDIN_CHUNK)
        try:
            asyncio.run_coroutine_threadsafe(chunks.put(chunk), loop).result()
        except (RuntimeError, concurrent.futures.CancelledError):  # the client has finished
            return
        if not chunk:
            return


async def _send_stdin(writer: asyncio.StreamWriter, done: asyncio.Event) -> None:
    """Send stdin as it arrives, so that the client works interactively; `done` is set at end of file."""
    chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=STDIN_QUEUE)
    threading.Thread(target=_read_stdin, args=(asyncio.get_running_loop(), chunks), daemon=True).start()
    try:
        while chunk := await chunks.get():
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    done.set()


async def _client(host: str, port: int, config: ClientConfig, timeout: float) -> int:
    later: list[Event] = []  # what happens after the handshake (a TLS 1.3 server may still refuse us)
    try:
        reader, writer, handshake = await open_connection(host, port, ClientConnection(config),
                                                          handshake_timeout=HANDSHAKE_TIMEOUT, on_event=later.append)
    except HandshakeError as err:
        print(describe_failure(err.event, err.peer_alert.description if err.peer_alert else None), file=sys.stderr)
        return 1
    except OSError as err:
        print(f"connect failed: {err}", file=sys.stderr)
        return 2
    print(f"connected: {handshake.version} {handshake.cipher_suite} {handshake.group} "
          f"validated={handshake.peer_validated}", file=sys.stderr, flush=True)
    stdin_done = asyncio.Event()
    sender = asyncio.create_task(_send_stdin(writer, stdin_done))
    try:
        while True:
            # Silence ends the session only once stdin is finished: an interactive user may pause for long.
            finished = stdin_done.is_set()
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout)
            except TimeoutError:
                if finished:
                    break
                continue
            if not chunk:
                break
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    except ConnectionError:
        pass
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sender
    writer.close()
    for event in later:
        if isinstance(event, HandshakeFailed):
            print(describe_failure(event, None), file=sys.stderr)
            return 1
        if isinstance(event, AlertReceived) and event.description != AlertDescription.CLOSE_NOTIFY:
            print(describe_failure(None, event.description), file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    """`server ARGS` or `client ARGS`."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in {"server", "client"}:
        print("usage: python -m adapters.tls_cli {server,client} [--help]", file=sys.stderr)
        raise SystemExit(2)
    (server_main if args[0] == "server" else client_main)(args[1:])


if __name__ == "__main__":
    main()
