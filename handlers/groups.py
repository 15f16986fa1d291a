from __future__ import annotations

from nexus_chat import uploads
from nexus_chat.schemas import groups as groups_schemas
from nexus_chat.services import groups
from nexus_chat.web import BaseHandler, Op

TAG = "Groups"
ICON = {"icon": "JPEG, PNG or WEBP image, at most 2 MB"}
ICON_LIMIT = uploads.ICON_MAX + uploads.MULTIPART_SLACK


def _icon(handler: BaseHandler) -> uploads.Source | None:
    icon = handler.files.get("icon")
    return icon.path if icon else None


class GroupsHandler(BaseHandler):
    ops = {"POST": Op("Create a group; you become its owner (JSON, or multipart with an `icon`)",
                      body=groups_schemas.CreateGroupBody, multipart=True, files=ICON, body_limit=ICON_LIMIT,
                      file_limit=uploads.ICON_MAX, status=201,
                      errors=(400, 401, 413, 429), response=groups_schemas.GroupSchema, tag=TAG)}

    async def post(self) -> None:
        body = await self.upload_args()
        group = await groups.create(self.ctx, self.user_id, name=body["name"],
                                    description=body.get("description"), icon=_icon(self))
        self.respond(group, "Group created successfully")


class InviteHandler(BaseHandler):
    ops = {"POST": Op("Add members to a group (owner or admin)", body=groups_schemas.InviteBody, status=201,
                      errors=(400, 401, 403, 404, 409), response=groups_schemas.InviteResultSchema, tag=TAG)}

    async def post(self) -> None:
        body = self.body_args()
        result = await groups.invite(self.ctx, self.user_id, str(body["groupId"]),
                                     [str(m) for m in body["memberIds"]])
        self.respond(result, "Members invited successfully")


class MyGroupsHandler(BaseHandler):
    ops = {"GET": Op("The groups you belong to, newest first", errors=(401,),
                     response=[groups_schemas.GroupSchema], tag=TAG)}

    async def get(self) -> None:
        self.respond(await groups.my_groups(self.ctx, self.user_id), "Groups retrieved successfully")


class GroupHandler(BaseHandler):
    path_params = groups_schemas.GroupPath
    ops = {
        "PATCH": Op("Update a group's name, description or icon (owner or admin)",
                    body=groups_schemas.UpdateGroupBody, multipart=True, files=ICON, body_limit=ICON_LIMIT,
                    file_limit=uploads.ICON_MAX,
                    errors=(400, 401, 403, 404, 413, 429), response=groups_schemas.GroupSchema, tag=TAG),
        "DELETE": Op("Delete a group with its messages and memberships (owner only)",
                     errors=(400, 401, 403, 404), tag=TAG),
    }

    async def patch(self, groupId: str) -> None:
        ids = self.path_ids(groupId=groupId)
        body = await self.upload_args()
        group = await groups.update(self.ctx, self.user_id, ids["groupId"], name=body.get("name"),
                                    description=body.get("description", groups.KEEP), icon=_icon(self))
        self.respond(group, "Group updated successfully")

    async def delete(self, groupId: str) -> None:
        ids = self.path_ids(groupId=groupId)
        await groups.delete(self.ctx, self.user_id, ids["groupId"])
        self.respond(None, "Group deleted successfully")


class LeaveHandler(BaseHandler):
    path_params = groups_schemas.GroupPath
    ops = {"POST": Op("Leave a group (an owner who is the last member deletes it)",
                      errors=(400, 401, 404), tag=TAG)}

    async def post(self, groupId: str) -> None:
        ids = self.path_ids(groupId=groupId)
        deleted = await groups.leave(self.ctx, self.user_id, ids["groupId"])
        self.respond(None, "You left the group; it was deleted as you were its last member"
                     if deleted else "You left the group successfully")


class MemberHandler(BaseHandler):
    path_params = groups_schemas.MemberPath
    ops = {"DELETE": Op("Remove a member (owner: anyone; admin: members only)",
                        errors=(400, 401, 403, 404), tag=TAG)}

    async def delete(self, groupId: str, memberId: str) -> None:
        ids = self.path_ids(groupId=groupId, memberId=memberId)
        await groups.kick(self.ctx, self.user_id, ids["groupId"], ids["memberId"])
        self.respond(None, "Member removed successfully")


class RoleHandler(BaseHandler):
    path_params = groups_schemas.MemberPath
    ops = {"PUT": Op("Change a member's role; setting `owner` hands over ownership (owner), "
                     "admins may only promote members to admin",
                     body=groups_schemas.RoleBody, errors=(400, 401, 403, 404), response=groups_schemas.MemberSchema, tag=TAG)}

    async def put(self, groupId: str, memberId: str) -> None:
        ids = self.path_ids(groupId=groupId, memberId=memberId)
        body = self.body_args()
        member = await groups.change_role(self.ctx, self.user_id, ids["groupId"], ids["memberId"],
                                          body["role"])
        self.respond(member, "Member role updated successfully")


class MembersHandler(BaseHandler):
    path_params = groups_schemas.GroupPath
    ops = {"GET": Op("The members of a group (members only)", errors=(400, 401, 403, 404),
                     response=[groups_schemas.MemberSchema], tag=TAG)}

    async def get(self, groupId: str) -> None:
        ids = self.path_ids(groupId=groupId)
        self.respond(await groups.members(self.ctx, self.user_id, ids["groupId"]),
                     "Group members retrieved successfully")


class ProfileHandler(BaseHandler):
    path_params = groups_schemas.GroupPath
    ops = {"GET": Op("A group's profile with its member count (members only)",
                     errors=(400, 401, 403, 404), response=groups_schemas.GroupSchema, tag=TAG)}

    async def get(self, groupId: str) -> None:
        ids = self.path_ids(groupId=groupId)
        self.respond(await groups.profile(self.ctx, self.user_id, ids["groupId"]),
                     "Group profile retrieved successfully")


routes = [
    (r"/api/groups", GroupsHandler),
    (r"/api/groups/invite", InviteHandler),
    (r"/api/groups/my-groups", MyGroupsHandler),
    (r"/api/groups/(?P<groupId>[^/]+)", GroupHandler),
    (r"/api/groups/(?P<groupId>[^/]+)/leave", LeaveHandler),
    (r"/api/groups/(?P<groupId>[^/]+)/members", MembersHandler),
    (r"/api/groups/(?P<groupId>[^/]+)/profile", ProfileHandler),
    (r"/api/groups/(?P<groupId>[^/]+)/members/(?P<memberId>[^/]+)", MemberHandler),
    (r"/api/groups/(?P<groupId>[^/]+)/members/(?P<memberId>[^/]+)/role", RoleHandler),
]
