"""Socket.IO v5 / Engine.IO v4 protocol layer on Tornado, with no product logic.

``server.SocketServer`` is the entry point; the codecs are pure modules.
"""
