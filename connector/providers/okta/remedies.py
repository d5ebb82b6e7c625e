"""The Astro SCIM FAQ's Okta fixes that drift --fix runs: remove and re-assign a user (or, for a user who holds the
app through groups, leave and re-join them), and re-push or re-link a group (push.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from connector.errors import ConnectorError, LeftHalfway, ManualStepRequired, NotFound, RemoteError
from connector.providers.base import RepairEnded
from connector.providers.okta.client import OktaClient
from connector.providers.okta.org import app_user_name
from connector.providers.okta.push import OktaGroupPush

# Users repaired side by side on one client, this many at a time (each is a chain of a few dependent requests):
# one after the other, 300 users missing took 49 s against the sandbox with no latency (100 at 30 ms a request:
# 42 s, side by side 23 s; measured once each with a probe script in session 10, not a benchmark kept here). The
# client's own concurrency limit and rate budget still pace the requests.
AT_ONCE = 8


class OktaRemedies(OktaGroupPush):
    """The Remedies capability: reassign_users and update_users here, repush_group and relink_group from
    OktaGroupPush."""

    def reassign_users(self, logins: Sequence[str], done: RepairEnded | None = None) -> list[str | ConnectorError]:
        """The FAQ's fix for users missing in Astro: remove and re-assign each user in Okta. Per login, in order:
        what was done, or the error that stopped it (the others still run); `done(i, result)` as each ends."""
        return self._repair_each(logins, self._reassign_user, done)

    def update_users(self, logins: Sequence[str], done: RepairEnded | None = None) -> list[str | ConnectorError]:
        """Repair attributes Astro holds wrong: update each app user (POST /api/v1/apps/{appId}/users/{userId}
        with an empty profile, which changes nothing in Okta), and Okta, with Update User Attributes on, pushes
        the app user's mapped profile to Astro (GET then a full PUT). Unlike remove and re-assign, the Astro
        account is never deactivated on the way. drift --fix re-audits: a mismatch that stays is reported.
        Results as reassign_users gives them."""
        return self._repair_each(logins, lambda c, login, _memo: self._update_user(c, login), done)

    def _repair_each(self, logins: Sequence[str],
              one: Callable[[OktaClient, str, dict[str, asyncio.Future[Any]]], Awaitable[str]],
              done: RepairEnded | None) -> list[str | ConnectorError]:
        """`one(client, login, memo)` for every login, AT_ONCE at a time on one client; `memo` holds the lists
        every user of the batch reads alike (the app's groups, the apps of a group), read once."""
        async def run(c: OktaClient) -> list[str | ConnectorError]:
            await self._find_app(c)  # once, before the users ask for it side by side
            memo: dict[str, asyncio.Future[Any]] = {}
            slots = asyncio.Semaphore(AT_ONCE)
            results: dict[int, str | ConnectorError] = {}
            # Anything else (a bug, a report callback that fails: a closed pipe) is raised once every user has
            # ended: raised at once, it would close the client under the others, and one who had left a group
            # would never re-join it.
            unexpected: list[Exception] = []

            async def repair(i: int, login: str) -> None:
                async with slots:
                    try:
                        result: str | ConnectorError = await one(c, login, memo)
                    except ConnectorError as exc:
                        result = exc
                    except Exception as exc:  # noqa: BLE001 - raised below, once the others have ended
                        unexpected.append(exc)
                        return
                results[i] = result
                if done is not None:
                    try:
                        done(i, result)
                    except Exception as exc:  # noqa: BLE001 - as above
                        unexpected.append(exc)

            await asyncio.gather(*(repair(i, login) for i, login in enumerate(logins)))
            if unexpected:
                raise unexpected[0]
            return [results[i] for i in range(len(logins))]

        return self._call(run) if logins else []

    @staticmethod
    async def _read_once(c: OktaClient, path: str, memo: dict[str, asyncio.Future[Any]]) -> list[dict[str, Any]]:
        """c.pages(path) for the whole batch: the first caller's read, which the others wait for (a failed one is
        forgotten, so the next caller reads again)."""
        task = memo.get(path)
        if task is None:
            task = memo[path] = asyncio.ensure_future(c.pages(path, {"limit": 200}))
        try:
            return list(await asyncio.shield(task))
        except Exception:
            if memo.get(path) is task:
                del memo[path]
            raise

    async def _app_and_user(self, c: OktaClient, login: str) -> tuple[dict[str, Any], str]:
        """The Astro app and the Okta user's id for `login` (NotFound when Okta has no such user)."""
        app = await self._find_app(c)
        try:
            user = await c.get(f"/api/v1/users/{login}")
        except RemoteError as exc:
            if exc.status == 404:
                raise NotFound(f"Okta {c.org_url} has no user {login!r}") from exc
            raise
        return app, str(user["id"])

    async def _update_user(self, c: OktaClient, login: str) -> str:
        app, uid = await self._app_and_user(c, login)
        app_id = str(app["id"])
        # Mapped attributes cannot be set explicitly while Okta pushes them (E0000075): send none.
        await c.request("POST", f"/api/v1/apps/{app_id}/users/{uid}", body={"profile": {}}, keep_empty=True)
        return f"updated the app user {login}: Okta pushes its mapped profile to Astro"

    async def _reassign_user(self, c: OktaClient, login: str, memo: dict[str, asyncio.Future[Any]]) -> str:
        app, uid = await self._app_and_user(c, login)
        app_id = str(app["id"])
        try:
            au = await c.get(f"/api/v1/apps/{app_id}/users/{uid}")
        except RemoteError as exc:
            if exc.status == 404:
                raise NotFound(f"{login} is not assigned to the Okta app {app.get('label')!r}",
                               hint="assign the user (or one of their groups) to the app first") from exc
            raise
        if au.get("scope") == "GROUP":
            return await self._reassign_through_groups(c, app, uid, login, memo)
        body = {"id": uid, "scope": "USER", "credentials": {"userName": app_user_name(au) or login}}
        label = app.get("label")
        undo = (f"assign {login} to {label!r} again in the Okta Admin Console (Applications > {label} > "
                "Assignments > Assign to People)")
        try:
            await self._unassign(c, app_id, uid)
        except RemoteError:
            # Still assigned, or it could not be told (the check failed too): assigning again changes nothing
            # for an assigned user and brings back one the DELETE did unassign.
            with contextlib.suppress(RemoteError):
                await self._assign(c, app_id, uid, body)
            raise
        except BaseException:
            # Interrupted (Ctrl-C cancels every repair of the batch) while the DELETE may have reached Okta:
            # the user is assigned again before the interruption goes on.
            await self._assign_after_interruption(c, app_id, uid, body, login, undo)
            raise
        if await self._assigned(c, app_id, uid) is True:
            # Assigned through a group as well: Okta turned the assignment into the group's (scope GROUP) and
            # provisioned nothing anew, which "removed and re-assigned" claimed. Through the groups, then directly.
            try:
                text = await self._reassign_through_groups(c, app, uid, login, memo)
            finally:
                await self._assign(c, app_id, uid, body)
            return f"{text}; assigned directly again"
        try:
            await self._assign(c, app_id, uid, body)
        except RemoteError as exc:
            raise LeftHalfway(f"{login} was removed from the Okta app {label!r} and not re-assigned", undo,
                              exc) from exc
        except BaseException:
            await self._assign_after_interruption(c, app_id, uid, body, login, undo)
            raise
        return f"removed and re-assigned {login}"

    async def _assign_after_interruption(self, c: OktaClient, app_id: str, uid: str, body: dict[str, Any],
                                         login: str, undo: str) -> None:
        """After an interruption mid re-assign: assign again (nothing changes for an assigned user); when that
        fails too, the user may be left unassigned, and LeftHalfway says so."""
        try:
            await self._assign(c, app_id, uid, body)
        except RemoteError as exc:
            raise LeftHalfway(f"interrupted: {login} may have been removed from the Okta app and not re-assigned",
                              undo, exc) from exc

    async def _assign(self, c: OktaClient, app_id: str, uid: str, body: dict[str, Any]) -> None:
        """Assign the user to the app (retried by the policy); when that fails, look (the answer may have been lost
        after Okta acted) and try once more, so a user is never left unassigned for one failed request."""
        path = f"/api/v1/apps/{app_id}/users"
        try:
            await c.request("POST", path, body=body)
        except RemoteError:
            if await self._assigned(c, app_id, uid) is True:
                return
            await c.request("POST", path, body=body)

    async def _rejoin(self, c: OktaClient, gid: str, uid: str, join: Callable[[Any], Awaitable[Any]]) -> None:
        """Put the user back in the group (retried by the policy); when that fails, look (the answer may have been
        lost after Okta acted) and try once more (PUT is idempotent)."""
        path = f"/api/v1/groups/{gid}/users/{uid}"
        try:
            await c.call("PUT", path, join)
        except RemoteError:
            if await self._member(c, gid, uid) is True:
                return
            await c.call("PUT", path, join)

    async def _assigned(self, c: OktaClient, app_id: str, uid: str) -> bool | None:
        """Whether the user is assigned to the app now (None: could not tell)."""
        try:
            await c.get(f"/api/v1/apps/{app_id}/users/{uid}")
        except RemoteError as exc:
            return False if exc.status == 404 else None
        return True

    async def _member(self, c: OktaClient, gid: str, uid: str) -> bool | None:
        """Whether the user is in the group now (None: could not tell). The user's groups, not the group's
        members: a few, where the group may hold every user of the app."""
        try:
            groups = await c.pages(f"/api/v1/users/{uid}/groups", {"limit": 200})
        except RemoteError:
            return None
        return any(str(g.get("id")) == gid for g in groups)

    async def _reassign_through_groups(self, c: OktaClient, app: dict[str, Any], uid: str, login: str,
                                       memo: dict[str, asyncio.Future[Any]]) -> str:
        """A user who holds the app through groups is re-assigned by leaving and re-joining those groups.

        Okta refuses to unassign such a user directly, and an individual assignment on top changes nothing. Leaving
        a group also takes away every other app that group grants, so this runs only when the groups grant no
        other app; otherwise it is a manual step.
        """
        app_id = str(app["id"])
        user_groups, assigned = await asyncio.gather(
            c.pages(f"/api/v1/users/{uid}/groups", {"limit": 200}),
            self._read_once(c, f"/api/v1/apps/{app_id}/groups", memo),
        )
        assigned_ids = {str(a.get("id")) for a in assigned}
        granting = [g for g in user_groups if str(g.get("id")) in assigned_ids]
        names = [str((g.get("profile") or {}).get("name") or g.get("id")) for g in granting]
        apps_per_group = await asyncio.gather(
            *(self._read_once(c, f"/api/v1/groups/{g['id']}/apps", memo) for g in granting)
        )
        shared = sorted({
            name for name, apps in zip(names, apps_per_group, strict=True)
            if any(str(a.get("id")) != app_id for a in apps)
        })
        if not granting or shared:
            raise ManualStepRequired(
                f"okta: {login} holds the app through group(s) {', '.join(shared or names) or '(none found)'}"
                + (" that also grant other apps" if shared else ""),
                steps=(f"In the Okta Admin Console open Applications > {app.get('label')} > Assignments, convert "
                       f"{login}'s assignment to an individual one, then remove and re-assign the user."),
            )
        def leave(gid: str) -> Callable[[Any], Awaitable[Any]]:
            return lambda sdk: sdk.unassign_user_from_group(gid, uid)

        def join(gid: str) -> Callable[[Any], Awaitable[Any]]:
            return lambda sdk: sdk.assign_user_to_group(gid, uid)

        left: list[tuple[str, str]] = []  # (group id, name) the user left, or may have left
        failed: RemoteError | None = None
        interrupted: BaseException | None = None  # Ctrl-C (a cancelled task) or an unexpected error mid-way
        for g, name in zip(granting, names, strict=True):
            gid = str(g["id"])
            try:
                await c.call("DELETE", f"/api/v1/groups/{gid}/users/{uid}", leave(gid))
            except RemoteError as exc:
                # The answer may have been lost after Okta acted (a dropped connection): look before deciding.
                if await self._member(c, gid, uid) is not True:
                    left.append((gid, name))
                failed = exc
                break
            except BaseException as exc:  # noqa: BLE001 - re-raised below, once the memberships are back
                left.append((gid, name))  # it may have reached Okta: re-joining a member changes nothing
                interrupted = exc
                break
            left.append((gid, name))
        # Re-join whatever was left, even after a failure: a membership must never stay lost.
        lost: list[str] = []
        cause: RemoteError | None = None
        for gid, name in left:
            try:
                await self._rejoin(c, gid, uid, join(gid))
            except RemoteError as exc:
                lost.append(name)
                cause = cause or exc
            except BaseException as exc:  # noqa: BLE001 - interrupted mid re-join: once more, then re-raised
                interrupted = interrupted or exc
                try:
                    await self._rejoin(c, gid, uid, join(gid))
                except RemoteError as again:  # reported below, with what is left
                    lost.append(name)
                    cause = cause or again
        if cause is not None:
            groups = ", ".join(repr(n) for n in lost)
            raise LeftHalfway(
                f"{login} was removed from group {groups} in Okta, not re-added",
                f"re-add {login} to {groups} in the Okta Admin Console (Directory > Groups > {lost[0]} > Assign "
                "people); do not count on a drift run to find it: out of these groups the user may be out of the "
                "app's scope, where no audit sees them", cause) from cause
        if interrupted is not None:
            raise interrupted
        if failed is not None:
            raise failed
        return f"re-assigned {login} (left and re-joined {', '.join(names)}, which grant only this app)"

    async def _unassign(self, c: OktaClient, app_id: str, uid: str) -> None:
        path = f"/api/v1/apps/{app_id}/users/{uid}"
        try:
            await c.call("DELETE", path, lambda s: s.unassign_user_from_application(app_id, uid, send_email=False))
        except RemoteError as exc:
            # A 404 is already done; otherwise the answer may have been lost after Okta acted: look before deciding.
            if exc.status != 404 and await self._assigned(c, app_id, uid) is not False:
                raise
