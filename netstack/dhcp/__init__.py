"""DHCP client (RFC 2131, options RFC 2132): message codec and a sans-I/O state machine."""
