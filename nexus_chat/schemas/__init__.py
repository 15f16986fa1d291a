"""marshmallow schemas: declared once per route, used to validate requests and to build
the OpenAPI document. Unknown fields are refused (marshmallow's default RAISE)."""
