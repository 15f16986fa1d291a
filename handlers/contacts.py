from __future__ import annotations

from nexus_chat.schemas import contacts as contacts_schemas
from nexus_chat.services import contacts
from nexus_chat.web import BaseHandler, Op

TAG = "Contacts"


class ContactsHandler(BaseHandler):
    ops = {
        "POST": Op("Add a user to your contacts under an alias (they are not told)",
                   body=contacts_schemas.CreateContactBody, status=201, errors=(400, 401, 404, 409),
                   response=contacts_schemas.ContactSchema, tag=TAG),
        "GET": Op("Your contacts, ordered by alias", errors=(401,), response=[contacts_schemas.ContactSchema], tag=TAG),
    }

    async def post(self) -> None:
        body = self.body_args()
        contact = await contacts.add(self.ctx, self.user_id, str(body["contactUserId"]), body.get("alias"))
        self.respond(contact, "Contact added successfully")

    async def get(self) -> None:
        self.respond(await contacts.list_all(self.ctx, self.user_id), "Contacts retrieved successfully")


class ContactHandler(BaseHandler):
    path_params = contacts_schemas.ContactPath
    ops = {
        "GET": Op("One of your contacts", errors=(400, 401, 404), response=contacts_schemas.ContactSchema, tag=TAG),
        "PUT": Op("Rename one of your contacts", body=contacts_schemas.UpdateContactBody, errors=(400, 401, 404),
                  response=contacts_schemas.ContactSchema, tag=TAG),
        "DELETE": Op("Remove one of your contacts", errors=(400, 401, 404), tag=TAG),
    }

    async def get(self, id: str) -> None:
        ids = self.path_ids(id=id)
        self.respond(await contacts.get(self.ctx, self.user_id, ids["id"]), "Contact retrieved successfully")

    async def put(self, id: str) -> None:
        ids = self.path_ids(id=id)
        body = self.body_args()
        contact = await contacts.rename(self.ctx, self.user_id, ids["id"], body["alias"])
        self.respond(contact, "Contact updated successfully")

    async def delete(self, id: str) -> None:
        ids = self.path_ids(id=id)
        await contacts.remove(self.ctx, self.user_id, ids["id"])
        self.respond(None, "Contact deleted successfully")


routes = [
    (r"/api/contacts", ContactsHandler),
    (r"/api/contacts/(?P<id>[^/]+)", ContactHandler),
]
