from __future__ import annotations

from nexus_chat.errors import ApiError
from nexus_chat.schemas.health import HealthSchema
from nexus_chat.web import BaseHandler, Op


class HealthHandler(BaseHandler):
    ops = {"GET": Op("Liveness and database check", auth=False, errors=(503,),
                     response=HealthSchema, tag="Health")}

    async def get(self) -> None:
        if not await self.ctx.db.ping():
            raise ApiError(503, "Service unavailable: database: down")
        body = {"status": "ok", "database": "up"}
        if self.ctx.cluster is not None:
            # Local delivery goes on without Redis: the process stays healthy, but says so.
            body["redis"] = "up" if self.ctx.cluster.up else "down"
        self.respond(body, "Service is healthy")


routes = [(r"/api/health", HealthHandler)]
