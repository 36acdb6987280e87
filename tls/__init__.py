"""A sans-I/O TLS 1.3 and 1.2 engine with its own X.509 validation (`tls.x509`).

`cryptography` supplies the primitives only; the protocol logic is ours. Nothing in this package
touches a socket, a clock or a random source directly: they are passed in.
"""
