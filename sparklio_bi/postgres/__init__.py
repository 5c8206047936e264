"""PostgreSQL: the embedded server, connections, the read-only reader role."""
