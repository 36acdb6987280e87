"""The Piñata bounty appliance: composes the network stack, TLS, X.509 and the wallet vault.

`python -m appliance` boots it (see appliance.main for the boot order), `python -m appliance provision`
puts a wallet key on a data disk. Modules, one job each: config (every limit and port), pki (boot CA),
vault (the secret's only ways out), bitcoin/ripemd160 (encodings), disk/ledger_record/ledger (the attack
ledger), stats/svg/web/http (the pages), net (kernel or userspace network), tls_engine/ours_tls/stdlib_tls
(the swappable TLS engines), validation (peer chains), channel (asyncio <-> sans-I/O TLS), service (the
five endpoints and their outcomes), log (JSON lines on the console).
"""
