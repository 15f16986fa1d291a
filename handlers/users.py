from __future__ import annotations

from nexus_chat import uploads
from nexus_chat.schemas import users as users_schemas
from nexus_chat.schemas.common import UserSchema
from nexus_chat.services import users
from nexus_chat.web import BaseHandler, Op

TAG = "Users"


class SearchHandler(BaseHandler):
    ops = {"GET": Op("Search users by username or full name (at least 3 characters, up to 20 results)",
                     query=users_schemas.SearchQuery, errors=(400, 401), response=[users_schemas.UserSearchResultSchema], tag=TAG)}

    async def get(self) -> None:
        query = self.query_args()
        self.respond(await users.search(self.ctx, self.user_id, query["q"]), "Users retrieved successfully")


class ProfileHandler(BaseHandler):
    ops = {"PATCH": Op("Update your profile (JSON, or multipart with an `avatar` image up to 2 MB)",
                       body=users_schemas.ProfileBody, multipart=True,
                       files={"avatar": "JPEG, PNG or WEBP image, at most 2 MB"},
                       body_limit=uploads.AVATAR_MAX + uploads.MULTIPART_SLACK, file_limit=uploads.AVATAR_MAX,
                       errors=(400, 401, 409, 413, 429), response=UserSchema, tag=TAG)}

    async def patch(self) -> None:
        body = await self.upload_args()
        avatar = self.files.get("avatar")
        user = await users.update_profile(
            self.ctx, self.user_id, username=body.get("username"), full_name=body.get("fullName"),
            bio=body.get("bio", ...), avatar=avatar.path if avatar else None,
            send_read_receipts=body.get("sendReadReceipts"))
        self.respond(user, "Profile updated successfully")


routes = [
    (r"/api/users/search", SearchHandler),
    (r"/api/users/profile", ProfileHandler),
]
