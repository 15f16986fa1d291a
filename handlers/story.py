from __future__ import annotations

from nexus_chat import uploads
from nexus_chat.schemas import stories as stories_schemas
from nexus_chat.services import stories
from nexus_chat.web import BaseHandler, Op

TAG = "Stories"


class StoriesHandler(BaseHandler):
    ops = {
        "POST": Op("Post a story: a caption and/or one file, `image` or `video`, up to 20 MB",
                   body=stories_schemas.CreateStoryBody, multipart=True,
                   files={"image": "JPEG, PNG or WEBP image", "video": "MP4, MOV or MKV video"},
                   body_limit=uploads.STORY_MAX + uploads.MULTIPART_SLACK, file_limit=uploads.STORY_MAX,
                   status=201,
                   errors=(400, 401, 413, 429), response=stories_schemas.StorySchema, tag=TAG),
        "GET": Op("Your active stories, oldest first, with view counts", errors=(401,),
                  response=[stories_schemas.OwnStorySchema], tag=TAG),
    }

    async def post(self) -> None:
        body = await self.upload_args()
        image, video = self.files.get("image"), self.files.get("video")
        story = await stories.create(self.ctx, self.user_id, caption=body.get("caption"),
                                     image=image.path if image else None,
                                     video=video.path if video else None)
        self.respond(story, "Story created successfully")

    async def get(self) -> None:
        self.respond(await stories.mine(self.ctx, self.user_id), "Stories retrieved successfully")


class FeedHandler(BaseHandler):
    ops = {"GET": Op("Active stories of your mutual contacts, oldest first, under your aliases",
                     errors=(401,), response=[stories_schemas.FeedStorySchema], tag=TAG)}

    async def get(self) -> None:
        self.respond(await stories.feed(self.ctx, self.user_id), "Story feed retrieved successfully")


class StoryHandler(BaseHandler):
    path_params = stories_schemas.StoryPath
    ops = {"DELETE": Op("Delete one of your stories and its media file", errors=(400, 401, 404), tag=TAG)}

    async def delete(self, id: str) -> None:
        ids = self.path_ids(id=id)
        await stories.delete(self.ctx, self.user_id, ids["id"])
        self.respond(None, "Story deleted successfully")


class SeenHandler(BaseHandler):
    path_params = stories_schemas.StoryIdPath
    ops = {"POST": Op("Mark a mutual contact's story as seen (idempotent)", errors=(400, 401, 404), tag=TAG)}

    async def post(self, storyId: str) -> None:
        ids = self.path_ids(storyId=storyId)
        await stories.mark_seen(self.ctx, self.user_id, ids["storyId"])
        self.respond(None, "Story marked as seen")


class ViewersHandler(BaseHandler):
    path_params = stories_schemas.StoryIdPath
    ops = {"GET": Op("Who saw your story, newest first, under your aliases (owner only)",
                     errors=(400, 401, 403, 404), response=[stories_schemas.ViewerSchema], tag=TAG)}

    async def get(self, storyId: str) -> None:
        ids = self.path_ids(storyId=storyId)
        self.respond(await stories.viewers(self.ctx, self.user_id, ids["storyId"]),
                     "Story viewers retrieved successfully")


routes = [
    (r"/api/story", StoriesHandler),
    (r"/api/story/feed", FeedHandler),
    (r"/api/story/(?P<id>[^/]+)", StoryHandler),
    (r"/api/story/(?P<storyId>[^/]+)/seen", SeenHandler),
    (r"/api/story/(?P<storyId>[^/]+)/viewers", ViewersHandler),
]
