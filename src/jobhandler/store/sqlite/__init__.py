"""The SQLite dialect: the file, its store thread, the direct path and datagram wake-ups."""
