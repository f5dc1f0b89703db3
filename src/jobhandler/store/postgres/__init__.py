"""The PostgreSQL dialect: the pool, the wire (pipelines and COPY) and LISTEN/NOTIFY."""
