"""Where frames come from: one interface (base.Link), three backends (TAP, AF_PACKET, in-memory)."""
