"""GET /api/openapi.json: generated from the routes and Op declarations, valid OpenAPI 3.1,
and in step with the routes the live application really serves."""
from __future__ import annotations

import pytest
import tornado.web
from openapi_spec_validator import validate

from nexus_chat.openapi import build_document
from nexus_chat.routes import api_routes
from nexus_chat.routing import route_rules, route_template
from nexus_chat.web import BaseHandler

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def live_operations(app) -> set[tuple[str, str]]:
    """(templated path, method) of every route under /api/ that the running app serves."""
    found = set()
    for pattern, handler in route_rules(app):
        template = route_template(pattern)
        if not template.startswith("/api/"):
            continue
        if issubclass(handler, BaseHandler):
            methods = set(handler.ops)
        elif issubclass(handler, tornado.web.StaticFileHandler):
            methods = {"GET"}
        else:
            raise AssertionError(f"{template} is served by {handler.__name__}, which the "
                                 "OpenAPI generator does not know how to document")
        assert methods, f"{template} ({handler.__name__}) declares no operation"
        found |= {(template, method.lower()) for method in methods}
    return found


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


@pytest.mark.gen_test
async def test_document_lists_exactly_the_live_routes(api, runtime):
    response = await api.get("/api/openapi.json")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.json
    live = live_operations(runtime.app)
    documented = documented_operations(document)
    assert live - documented == set(), "routes served but missing from the document"
    assert documented - live == set(), "routes in the document that the server does not serve"
    # The routes every area must have (a sanity check that the live set is not empty).
    for path, method in [("/api/auth/login", "post"), ("/api/health", "get"),
                         ("/api/openapi.json", "get")]:
        assert (path, method) in live


@pytest.mark.gen_test
async def test_document_is_valid_openapi_3_1(api):
    document = (await api.get("/api/openapi.json")).json
    assert document["openapi"].startswith("3.1")
    validate(document)   # raises OpenAPIValidationError with the first problem


def test_generated_without_a_server_is_the_same_document():
    document = build_document(api_routes())
    validate(document)
    assert "/api/auth/register" in document["paths"]


def test_operations_carry_schemas_security_and_errors():
    document = build_document(api_routes())
    paths, components = document["paths"], document["components"]
    register = paths["/api/auth/register"]["post"]
    body = register["requestBody"]["content"]["application/json"]["schema"]
    schema = components["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"username", "fullName", "email", "password"}
    assert schema["properties"]["email"]["format"] == "email"
    assert schema["additionalProperties"] is False
    assert "201" in register["responses"] and "409" in register["responses"]
    assert "security" not in register

    me = paths["/api/auth/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert me["responses"]["401"] == {"$ref": "#/components/responses/Error401"}
    success = me["responses"]["200"]["content"]["application/json"]["schema"]["allOf"]
    assert success[0] == {"$ref": "#/components/schemas/SuccessEnvelope"}
    assert success[1]["properties"]["data"] == {"$ref": "#/components/schemas/User"}
    assert components["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    error = components["responses"]["Error401"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorEnvelope"}

    verify = paths["/api/auth/verify-email"]["get"]
    assert [p["name"] for p in verify["parameters"]] == ["token"]
    assert verify["parameters"][0]["in"] == "query"
    assert "302" in verify["responses"]


def test_multipart_upload_and_path_parameters_are_described():
    document = build_document(api_routes())
    profile = document["paths"]["/api/users/profile"]["patch"]["requestBody"]["content"]
    form = profile["multipart/form-data"]["schema"]
    assert form["properties"]["avatar"]["format"] == "binary"
    assert "username" in form["properties"]
    assert "application/json" in profile
    member = document["paths"]["/api/groups/{groupId}/members/{memberId}"]
    assert [p["name"] for p in member["parameters"]] == ["groupId", "memberId"]
    assert all(p["in"] == "path" and p["required"] for p in member["parameters"])


def test_list_responses_are_arrays_of_the_schema():
    document = build_document(api_routes())
    contacts = document["paths"]["/api/contacts"]["get"]["responses"]["200"]
    data = contacts["content"]["application/json"]["schema"]["allOf"][1]["properties"]["data"]
    assert data["type"] == "array" and data["items"]["$ref"].startswith("#/components/schemas/")


@pytest.mark.parametrize("pattern, template", [
    (r"/api/auth/login", "/api/auth/login"),
    (r"/api/openapi\.json$", "/api/openapi.json"),
    (r"^/api/groups/(?P<groupId>[^/]+)/members/(?P<memberId>[^/]+)/role$",
     "/api/groups/{groupId}/members/{memberId}/role"),
    (r"/api/groups/([^/]+)/members/([^/]+)", "/api/groups/{groupId}/members/{memberId}"),
    (r"/api/story/([^/]+)/seen", "/api/story/{storyId}/seen"),
    (r"/api/stories/([0-9a-f-]+)", "/api/stories/{storyId}"),
    (r"/api/public/(.*)", "/api/public/{path}"),
    (r"/api/story/?", "/api/story"),
])
def test_route_template(pattern, template):
    assert route_template(pattern) == template


def test_route_template_refuses_what_it_cannot_express():
    with pytest.raises(ValueError):
        route_template(r"/api/(a|b)/x[0-9]")
    with pytest.raises(ValueError):
        route_template(r"/api/x|y")


def test_path_ids_are_uuids():
    document = build_document(api_routes())
    ids = 0
    for path, item in document["paths"].items():
        for param in item.get("parameters", []):
            if param["in"] == "path" and (param["name"] == "id" or param["name"].endswith("Id")):
                assert param["schema"] == {"type": "string", "format": "uuid"}, (path, param)
                ids += 1
    assert ids >= 15


def test_health_data_is_described():
    health = build_document(api_routes())["paths"]["/api/health"]["get"]["responses"]
    data = health["200"]["content"]["application/json"]["schema"]["allOf"][1]["properties"]["data"]
    assert data == {"$ref": "#/components/schemas/Health"}
    schema = build_document(api_routes())["components"]["schemas"]["Health"]
    assert schema["properties"]["status"]["enum"] == ["ok"]
    assert set(schema["required"]) == {"status", "database"}
    assert "503" in health


def test_password_limit_is_in_bytes():
    schemas = build_document(api_routes())["components"]["schemas"]
    for name, prop in [("RegisterBody", "password"), ("ResetPasswordBody", "newPassword"),
                       ("ChangePasswordBody", "newPassword")]:
        password = schemas[name]["properties"][prop]
        assert password["x-maxBytes"] == 72 and "72 bytes" in password["description"]
        assert password["minLength"] == 6


def test_exactly_one_target_rule_is_machine_readable():
    from jsonschema import Draft202012Validator

    messages = build_document(api_routes())["paths"]["/api/chat/messages"]["get"]
    [param] = messages["parameters"]
    assert param["in"] == "query" and param["style"] == "form" and param["explode"] is True
    assert "Exactly one of recipientId or groupId" in messages["description"]
    validator = Draft202012Validator(param["schema"])
    an_id = "3af3473f-ce25-4a91-afcd-fd945da2eec8"
    assert validator.is_valid({"recipientId": an_id})
    assert validator.is_valid({"groupId": an_id, "limit": 5})
    assert not validator.is_valid({})
    assert not validator.is_valid({"recipientId": an_id, "groupId": an_id})
    assert not validator.is_valid({"groupId": an_id, "unknown": "1"})   # the server refuses it
    assert validator.is_valid({"groupId": an_id, "after": an_id})
    assert not validator.is_valid({"groupId": an_id, "after": an_id, "before": an_id})


def test_every_status_the_web_layer_answers_is_listed():
    document = build_document(api_routes())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS or path == "/api/public/{path}":
                continue
            statuses = set(operation["responses"])
            assert {"413", "429", "503"} <= statuses, (path, method)
            if operation.get("security"):
                assert "401" in statuses, (path, method)
            if operation.get("parameters") or operation.get("requestBody") or item.get("parameters"):
                assert "400" in statuses, (path, method)
    public = document["paths"]["/api/public/{path}"]["get"]["responses"]
    assert {"200", "206", "304", "404", "416"} <= set(public)
