"""Nexus Chat: a chat backend (REST + Socket.IO) on Tornado and MariaDB/MySQL."""

__version__ = "1.0.0"
