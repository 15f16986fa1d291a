from __future__ import annotations

import logging
from urllib.parse import urlencode

from nexus_chat import ratelimit
from nexus_chat.errors import ApiError, db_unreachable, too_many_requests
from nexus_chat.schemas import auth as auth_schemas
from nexus_chat.schemas.common import UserSchema
from nexus_chat.services import accounts, auth
from nexus_chat.tokens import InvalidToken
from nexus_chat.web import BaseHandler, Op

TAG = "Auth"
log = logging.getLogger("nexus_chat.auth")


class RegisterHandler(BaseHandler):
    ops = {"POST": Op("Register a new account and queue a verification e-mail", auth=False,
                      body=auth_schemas.RegisterBody, status=201, errors=(400, 409, 429), response=UserSchema,
                      rate_limit=ratelimit.REGISTER, tag=TAG)}

    async def post(self) -> None:
        body = self.body_args()
        user = await auth.register(self.ctx, username=body["username"], full_name=body["fullName"],
                                   email=body["email"], password=body["password"])
        self.respond(user, "Registration successful. Please check your email to verify your account.")


class VerifyEmailHandler(BaseHandler):
    ops = {"GET": Op("Verify an e-mail address (redirects to the front end)", auth=False,
                     query=auth_schemas.VerifyEmailQuery, status=302, tag=TAG)}

    async def get(self) -> None:
        token = self.get_query_argument("token", "")
        try:
            await auth.verify_email(self.ctx, token)
            params = {"status": "success"}
        except InvalidToken:
            params = {"status": "failed", "code": "INVALID_TOKEN"}
        except Exception as exc:
            if not db_unreachable(exc):   # an outage is logged once by the database tracker
                log.exception("e-mail verification failed request_id=%s", self.request_id)
            params = {"status": "failed", "code": "UNKNOWN_ERROR"}
        self.redirect(f"{self.ctx.settings.server_frontend_url}/auth/verify-email?{urlencode(params)}")


class LoginHandler(BaseHandler):
    ops = {"POST": Op("Log in; returns an access and a refresh token", auth=False, body=auth_schemas.LoginBody,
                      errors=(400, 401, 403, 429), response=auth_schemas.TokensSchema,
                      tag=TAG)}

    async def post(self) -> None:
        body = self.body_args()
        failures = ratelimit.failed_logins(self.ctx.settings)
        wait = await self.ctx.rate_limiter.wait_for(failures, self.client_ip)
        if wait:   # this IP guessed wrong too often, whichever accounts it tried
            raise too_many_requests(wait)
        await self.limit_per_account(ratelimit.LOGIN, body["email"])
        try:
            tokens = await auth.login(self.ctx, body["email"], body["password"])
        except ApiError as exc:
            if exc.status == 401:
                await self.ctx.rate_limiter.count(failures, self.client_ip)
            raise
        self.respond(tokens, "Login successful")


class LogoutHandler(BaseHandler):
    ops = {"POST": Op("Log out this session (revokes its refresh token)", errors=(401,), tag=TAG)}

    async def post(self) -> None:
        await auth.logout(self.ctx, self.user_id, self.session_id)
        self.respond(None, "Logout successful")


class MeHandler(BaseHandler):
    ops = {"GET": Op("The current user", errors=(401, 404), response=UserSchema, tag=TAG)}

    def authenticate(self) -> str:
        # docs/api.md#auth: a valid token of a deleted account answers 404 here, not 401.
        return self.access_claims().sub

    async def get(self) -> None:
        self.respond(await auth.me(self.ctx, self.user_id), "User profile retrieved successfully")


class RefreshHandler(BaseHandler):
    ops = {"POST": Op("Exchange a refresh token for new tokens (rotation)", auth=False,
                      body=auth_schemas.RefreshBody, errors=(400, 401), response=auth_schemas.TokensSchema, tag=TAG)}

    async def post(self) -> None:
        body = self.body_args()
        tokens = await auth.refresh(self.ctx, body["refreshToken"], body["userId"])
        self.respond(tokens, "Token refreshed successfully")


class ForgotPasswordHandler(BaseHandler):
    ops = {"POST": Op("Queue a password reset e-mail (same answer whether or not the account exists)",
                      auth=False, body=auth_schemas.EmailBody, errors=(400, 429),
                      tag=TAG)}

    async def post(self) -> None:
        body = self.body_args()
        await self.limit_per_account(ratelimit.MAIL_REQUEST, body["email"])
        await auth.forgot_password(self.ctx, body["email"])
        self.respond(None, "If an account exists for this email, a password reset link has been sent.")


class ResetPasswordHandler(BaseHandler):
    ops = {"POST": Op("Set a new password with a reset token (single use)", auth=False,
                      body=auth_schemas.ResetPasswordBody, errors=(400, 401), tag=TAG)}

    async def post(self) -> None:
        body = self.body_args()
        await auth.reset_password(self.ctx, body["token"], body["newPassword"])
        self.respond(None, "Your password has been reset successfully. Please login again.")


class ResendVerificationHandler(BaseHandler):
    ops = {"POST": Op("Queue a new verification e-mail for an unverified account", auth=False,
                      body=auth_schemas.EmailBody, errors=(400, 429), tag=TAG)}

    async def post(self) -> None:
        body = self.body_args()
        await self.limit_per_account(ratelimit.MAIL_REQUEST, body["email"])
        await auth.resend_verification(self.ctx, body["email"])
        self.respond(None, "If the account exists and is not verified yet, a verification email has been sent.")


class ChangePasswordHandler(BaseHandler):
    ops = {"POST": Op("Change the password; every session is revoked", body=auth_schemas.ChangePasswordBody,
                      errors=(400, 401), tag=TAG)}

    async def post(self) -> None:
        body = self.body_args()
        await auth.change_password(self.ctx, self.user_id, body["oldPassword"], body["newPassword"])
        self.respond(None, "Your password has been changed successfully. Please login again.")


class DeleteAccountHandler(BaseHandler):
    ops = {"DELETE": Op("Delete the account and everything that belongs to it only",
                        body=auth_schemas.DeleteAccountBody, errors=(400, 401), tag=TAG)}

    async def delete(self) -> None:
        body = self.body_args()
        await auth.check_password_for_deletion(self.ctx, self.user_id, body["password"])
        await accounts.delete_account(self.ctx, self.user_id)
        self.respond(None, "Your account has been deleted successfully.")


routes = [
    (r"/api/auth/register", RegisterHandler),
    (r"/api/auth/verify-email", VerifyEmailHandler),
    (r"/api/auth/login", LoginHandler),
    (r"/api/auth/logout", LogoutHandler),
    (r"/api/auth/me", MeHandler),
    (r"/api/auth/refresh", RefreshHandler),
    (r"/api/auth/forgot-password", ForgotPasswordHandler),
    (r"/api/auth/reset-password", ResetPasswordHandler),
    (r"/api/auth/resend-verification", ResendVerificationHandler),
    (r"/api/auth/change-password", ChangePasswordHandler),
    (r"/api/auth/delete-account", DeleteAccountHandler),
]
