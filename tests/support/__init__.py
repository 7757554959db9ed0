"""Real-part test helpers: a scriptable DNS server, SMTP sinks, TLS and loopback tools."""
