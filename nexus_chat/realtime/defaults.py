"""Defaults of the protocol layer's limits and timers, declared once: ``EngineServer`` and
``SocketServer`` take them as keyword defaults, and ``nexus_chat.config`` offers them as the
``realtime.*`` settings."""

PING_INTERVAL_MS = 25_000     # Engine.IO's pingInterval, pingTimeout and maxPayload defaults
PING_TIMEOUT_MS = 20_000
MAX_PAYLOAD = 1_000_000
CONNECT_TIMEOUT_MS = 45_000   # Socket.IO's connectTimeout
# A client that falls 4 MB behind is not reading; keeping more would let one slow reader
# hold memory that 10k idle sockets need.
MAX_BUFFER_BYTES = 4_000_000
# A binary packet's attachments must all arrive within this time; the bytes they may hold
# default to MAX_PAYLOAD (one attachment of the largest size).
ATTACHMENT_TIMEOUT_MS = 20_000
# Sessions that have not joined a namespace vouching for the client (the product's /chat).
# The protocol layer has no caps unless given; these are the product's defaults.
MAX_UNAUTHENTICATED = 5_000
MAX_UNAUTHENTICATED_PER_IP = 20
