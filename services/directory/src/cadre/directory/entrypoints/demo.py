"""The demo tenant `demo` (DESIGN section 9): a small city with the documented logins, all
with password `demo`. Loading goes through the bulk-import planner, so it is idempotent:
loading again changes nothing and emits no events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cadre.directory.adapters import repository as repo
from cadre.directory.domain.imports import plan_people, plan_units
from cadre.directory.entrypoints.security import hash_password
from cadre.directory.settings import DirectorySettings
from cadre.events.catalogue import GeofenceSetData
from cadre.events.context import ChangeContext
from cadre.events.logging import get_logger
from cadre.events.service import ServiceRuntime

TENANT = "demo"
PASSWORD = "demo"  # noqa: S105 (the documented demo login, demo tenant only)
log = get_logger(__name__)

UNITS = [
    ("demo", "", "示范市", "city"),
    ("zzb", "demo", "市委组织部", "department"),
    ("wangmo", "demo", "望谟县", "county"),
    ("leye", "wangmo", "乐业镇", "township"),
    ("pingle", "wangmo", "平乐镇", "township"),
    ("leye-v1", "leye", "坡头村", "village"),
    ("leye-v2", "leye", "纳坝村", "village"),
    ("pingle-v1", "pingle", "桑郎村", "village"),
]
# (unit_id, centre lat, lon, radius m): the township and county offices.
GEOFENCES = [
    ("wangmo", 25.1707, 106.0914, 400.0),
    ("leye", 25.2263, 106.1489, 300.0),
    ("pingle", 25.0421, 106.2203, 300.0),
    ("leye-v1", 25.2402, 106.1655, 250.0),
    ("leye-v2", 25.2150, 106.1301, 250.0),
    ("pingle-v1", 25.0517, 106.2408, 250.0),
]
CADRE_UNITS = ["leye-v1", "leye-v2", "pingle-v1", "leye", "leye", "pingle", "pingle", "wangmo"]


def demo_people() -> list[dict[str, str]]:
    def person(
        cadre_id: str,
        username: str,
        name: str,
        unit_id: str,
        *,
        level: str = "",
        roles: str = "",
        stationed: bool = False,
        rank: str = "",
    ) -> dict[str, str]:
        return {
            "cadre_id": cadre_id,
            "username": username,
            "name": name,
            "unit_id": unit_id,
            "rank": rank,
            "leader_level": level,
            "stationed": "yes" if stationed else "no",
            "roles": roles,
            "password": PASSWORD,
        }

    people = [
        person("orgadmin", "orgadmin", "组织部管理员", "zzb", roles="org_admin", rank="科长"),
        person("super-admin", "super.admin", "平台超级管理员", "zzb", roles="super_admin"),
        person("senior-admin", "senior.admin", "平台高级管理员", "zzb", roles="senior_admin"),
        person("junior-admin", "junior.admin", "平台初级管理员", "zzb", roles="junior_admin"),
        person(
            "city-leader",
            "city.leader",
            "市领导",
            "demo",
            level="city",
            roles="leader",
            rank="厅级",
        ),
        person(
            "county-leader",
            "county.leader",
            "县领导",
            "wangmo",
            level="county",
            roles="leader",
            rank="处级",
        ),
        person(
            "township-leader",
            "township.leader",
            "镇领导",
            "leye",
            level="township",
            roles="leader",
            rank="科级",
        ),
    ]
    for n in range(1, 21):
        unit_id = CADRE_UNITS[(n - 1) % len(CADRE_UNITS)]
        people.append(
            person(
                f"cadre{n}",
                f"cadre{n}",
                f"干部{n}",
                unit_id,
                stationed=unit_id.endswith(("-v1", "-v2")),
                rank="科员",
            )
        )
    return people


async def load_demo(runtime: ServiceRuntime, tenant: str = TENANT) -> int:
    """Load the demo data into `tenant` (tests use a tenant of their own); returns the number
    of changes made (0 when already loaded)."""
    context = ChangeContext(tenant, "demo-loader")
    async with runtime.sessions() as session, session.begin():
        units = await repo.load_units(session, tenant)
        unit_plan = plan_units(
            [{"unit_id": u, "parent_id": p, "name": n, "level": lv} for u, p, n, lv in UNITS],
            units,
        )
        if unit_plan.errors:
            raise RuntimeError(f"demo units are invalid: {unit_plan.errors}")
        await repo.apply_plan(session, context, unit_plan, hash_password)
        units = await repo.load_units(session, tenant)
        people_plan = plan_people(
            demo_people(),
            units,
            await repo.load_cadres(session, tenant),
            await repo.accounts_with_password(session, tenant),
        )
        if people_plan.errors:
            raise RuntimeError(f"demo people are invalid: {people_plan.errors}")
        await repo.apply_plan(session, context, people_plan, hash_password)
        fences = 0
        for unit_id, lat, lon, radius in GEOFENCES:
            if not await repo.list_geofences(session, tenant, unit_id):
                fence = GeofenceSetData(
                    unit_id=unit_id,
                    fence_id="office",
                    name="办公地点",
                    lat=lat,
                    lon=lon,
                    radius_m=radius,
                )
                await repo.set_geofence(session, context, units[unit_id], fence)
                fences += 1
    return unit_plan.changes + people_plan.changes + fences


def load_demo_if_wanted(settings: DirectorySettings) -> Callable[[ServiceRuntime], Awaitable[None]]:
    async def on_startup(runtime: ServiceRuntime) -> None:
        if settings.load_demo:
            changes = await load_demo(runtime, settings.demo_tenant)
            log.info(
                "demo tenant loaded" if changes else "demo tenant already present",
                tenant=settings.demo_tenant,
                changes=changes,
            )

    return on_startup
