"""Reference server for bench/tls_handshake.py: the same asyncio page server as `python -m adapters.tls_cli
server` (one request head read, the page answered, the connection closed), with asyncio's own `ssl` transport
doing TLS. Run as
`python -m bench._tls_ssl_server CERT KEY [--client-ca PEM] PORT` (the port last)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys

from adapters.tls_cli import MAX_REQUEST, page, request_complete


def main() -> None:
    cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[-1])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if "--client-ca" in sys.argv:
        context.load_verify_locations(sys.argv[sys.argv.index("--client-ca") + 1])
        context.verify_mode = ssl.CERT_REQUIRED

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = b""
        with contextlib.suppress(ConnectionError, OSError):
            while not request_complete(head):
                chunk = await reader.read(MAX_REQUEST)
                if not chunk or len(head) + len(chunk) > MAX_REQUEST:
                    writer.close()
                    return
                head += chunk
            writer.write(page(None))
            await writer.drain()
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", port, ssl=context, reuse_address=True, backlog=512)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
