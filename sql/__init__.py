"""The numbered schema migrations, shipped as package data of nexus_chat.sql (read by nexus_chat.migrate)."""
