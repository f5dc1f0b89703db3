"""The client: Client and AsyncClient over httpx, and the wire models it shares with the
server. Importing it loads no server package."""
