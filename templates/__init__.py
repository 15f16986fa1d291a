"""The Jinja2 e-mail templates, shipped as package data of nexus_chat.templates (read by nexus_chat.mail)."""
