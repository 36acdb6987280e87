"""The Piñata bounty appliance: composes the network stack, TLS, X.509 and the wallet vault.

`python -m appliance` boots it (see appliance.main for the boot order), `python -m appliance provision`
puts a wallet key on a data disk, `python -m appliance disk check|repair` is the operator's disk tool.
Modules, one job each: config (every limit and port), pki (boot CA), alternates/identities (the RSA leaves
made after ready, and the leaves each server role presents), in_thread (a job on a thread of its own while
the loop goes on), vault (the secret's only ways out),
bitcoin/ripemd160 (encodings), disk_header/disk (two header copies, positional I/O under a lock),
data_disk (the boot decisions about key and ledger), ledger_record/ledger_scan/ledger (the attack ledger
and its recovery), disk_check/disk_repair (operator tools), stats/svg/web/http/markup (the pages), net (kernel or
userspace network), tls_engine/ours_tls/stdlib_tls (the swappable TLS engines), validation (peer chains),
endpoints (what each port does, over `adapters.tls_channel`), service (admission and one recorded outcome
per connection), log (JSON lines on the console), sources (the one clock and randomness source), main (the
composition root).
"""
