"""Thin Tornado handlers: parse with the op's schema, call a service, respond."""
