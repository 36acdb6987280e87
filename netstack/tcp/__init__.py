"""TCP (RFC 9293) as pure protocol code: `TcpLayer` takes segments and time, returns segments and events.

`adapters.tcp_sockets` adapts it to asyncio Transports; `adapters.network` composes it with the rest of the stack.
"""

from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpError, TcpLayer

__all__ = ["TcpConfig", "TcpError", "TcpLayer"]
