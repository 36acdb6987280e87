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

from adapters.tls_channel import PlainChannel, RefusedError, TlsChannel, connect_tls
from outcomes.category import Category
from tls.alerts import alert_name
from tls.client import ClientConnection
from tls.config import NO_VALIDATION_FOR_TESTS, ClientAuth, ClientAuthMode, ClientConfig, Credential, ServerConfig
from tls.constants import NamedGroup
from tls.events import HandshakeComplete, RequestRefused
from tls.groups import SUPPORTED_GROUPS
from tls.server import ServerConnection
from tls.signatures import PrivateKey

HANDSHAKE_TIMEOUT = 10.0
SEND_TIMEOUT = 10.0
"""Longest a send may wait for a peer that does not read."""
READ_CHUNK = 1 << 16
"""Most bytes read from the socket (and handed to the engine) at once."""
LINGER_SECONDS = 2.0
LINGER_BYTES = 256 * 1024
"""Bounds of the lingering close (tls_channel.PlainChannel.close): after our last bytes, how long and how much
of the peer's input we read and discard while waiting for its end of stream, so that it reads ours first."""
MAX_REQUEST = 16 * 1024
"""Largest HTTP request head the test server buffers."""
REQUEST_TIMEOUT = 10.0
"""Longest the test server waits for a request head after the handshake."""
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


def describe_failure(refused: RefusedError) -> str:
    if refused.alert is not None:
        return f"handshake failed: sent alert {alert_name(refused.alert)} ({refused.alert}), " \
               f"category {refused.category}: {refused.reason}"
    if refused.peer_alert is not None:
        return f"refused: peer alert {alert_name(refused.peer_alert)} ({refused.peer_alert}), " \
               f"category {Category.PEER_ALERT}"
    if refused.category is Category.CONNECTION_RESET:
        return f"handshake failed: connection closed, category {Category.CONNECTION_RESET}"
    return f"handshake failed: category {refused.category}: {refused.reason}"


def page(handshake: HandshakeComplete | None) -> bytes:
    """A small 200 page describing the TLS session (like `openssl s_server -www`)."""
    lines = ["<html><body><pre>", "Piñata TLS test server"]
    if handshake is not None:
        lines += [f"Protocol: {handshake.version}", f"Cipher: {handshake.cipher_suite}",
                  f"Group: {handshake.group}", f"Client certificates: {len(handshake.peer_chain)}"]
    body = ("\n".join([*lines, "</pre></body></html>"]) + "\n").encode()
    return f"HTTP/1.0 200 ok\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def request_complete(head: bytes) -> bool:
    return b"\r\n\r\n" in head or b"\n\n" in head


async def answer_one_request(tls: TlsChannel, handshake: HandshakeComplete) -> RefusedError | None:
    """Read one HTTP request head (at most MAX_REQUEST bytes) and answer it with the page. Returns the
    refusal that ended the connection early, if any (a renegotiation attempt, say). The caller closes."""
    head = b""
    try:
        while not request_complete(head):
            chunk = await tls.recv(REQUEST_TIMEOUT)
            if not chunk or len(head) + len(chunk) > MAX_REQUEST:
                return None
            head += chunk
        await tls.send(page(handshake))
    except RefusedError as refused:
        return refused
    return None


def server_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.tls_cli server", description="Piñata TLS test server")
    parser.add_argument("--cert", required=True, action="append",
                        help="PEM chain, leaf first; repeat (with --key) for more credentials, preferred first")
    parser.add_argument("--key", required=True, action="append", help="PEM private key, one per --cert")
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
    if len(args.cert) != len(args.key):
        parser.error("give one --key per --cert")
    credentials = [Credential.of(load_chain(cert), load_key(key)) for cert, key in zip(args.cert, args.key,
                                                                                         strict=True)]
    config = ServerConfig(chain=credentials[0].chain, key=credentials[0].key, random=os.urandom, time=now,
                          client_auth=client_auth, groups=groups, more_credentials=tuple(credentials[1:]))

    def report(refused: RefusedError | None) -> None:
        if refused is not None and refused.alert is not None and not args.quiet:  # our refusals only
            print(describe_failure(refused), file=sys.stderr, flush=True)

    def report_warning(event: RequestRefused) -> None:
        """A request refused with a warning (the connection goes on), said as it happens."""
        if not args.quiet:
            print(f"refused with warning alert {alert_name(event.alert)} ({event.alert}), "
                  f"category {event.category}: {event.reason}", file=sys.stderr, flush=True)

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        plain = PlainChannel(reader, writer, read_chunk=READ_CHUNK, send_timeout=SEND_TIMEOUT,
                             linger_seconds=LINGER_SECONDS, linger_bytes=LINGER_BYTES)
        tls = TlsChannel(ServerConnection(config), plain, on_request_refused=report_warning)
        try:
            handshake = await tls.handshake(asyncio.get_running_loop().time() + HANDSHAKE_TIMEOUT)
        except RefusedError as refused:
            report(refused)  # before the close, which waits on the peer
            await tls.close()
            return
        report(await answer_one_request(tls, handshake))
        await tls.close()

    async def serve() -> None:
        server = await asyncio.start_server(connected, args.host, args.port, reuse_address=True, backlog=512,
                                            limit=READ_CHUNK)
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


async def _send_stdin(tls: TlsChannel, done: asyncio.Event) -> None:
    """Send stdin as it arrives, so that the client works interactively; `done` is set at end of file."""
    chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=STDIN_QUEUE)
    threading.Thread(target=_read_stdin, args=(asyncio.get_running_loop(), chunks), daemon=True).start()
    try:
        while chunk := await chunks.get():
            await tls.send(chunk)
    except RefusedError:
        pass
    done.set()


async def _client(host: str, port: int, config: ClientConfig, timeout: float) -> int:
    try:
        tls, handshake = await connect_tls(host, port, ClientConnection(config), read_chunk=READ_CHUNK,
                                           send_timeout=SEND_TIMEOUT, handshake_timeout=HANDSHAKE_TIMEOUT,
                                           linger_seconds=LINGER_SECONDS, linger_bytes=LINGER_BYTES)
    except RefusedError as refused:
        print(describe_failure(refused), file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as err:
        print(f"connect failed: {err}", file=sys.stderr)
        return 2
    print(f"connected: {handshake.version} {handshake.cipher_suite} {handshake.group} "
          f"validated={handshake.peer_validated}", file=sys.stderr, flush=True)
    stdin_done = asyncio.Event()
    sender = asyncio.create_task(_send_stdin(tls, stdin_done))
    try:
        while True:
            # Silence ends the session only once stdin is finished: an interactive user may pause for long.
            finished = stdin_done.is_set()
            try:
                chunk = await tls.recv(timeout)
            except RefusedError as refused:
                if refused.category is Category.TIMEOUT and not finished:
                    continue
                break
            if not chunk:
                break
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await tls.close()
    if tls.ended_by is not None:  # what happened after the handshake (a TLS 1.3 server may still refuse us)
        print(describe_failure(tls.ended_by), file=sys.stderr)
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
