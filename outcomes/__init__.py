"""What became of a connection, named once for every layer: the TLS engine, X.509 validation, the HTTP
server and the appliance's statistics all speak `outcomes.category.Category`. A leaf: it imports nothing
of the project, so every package may import it."""
