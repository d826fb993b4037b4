"""The statistics page: alarms per village and kind, time to acknowledge and to
resolve per level and month (server-rendered SVG), and the CSV export behind them."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from aiohttp import web
from markupsafe import Markup

from stb_portal import auth, i18n
from stb_portal.centre import charts
from stb_portal.centre.render import csv_response, language, page
from stb_portal.keys import TRANSLATIONS
from xueliang import audit, stats
from xueliang.errors import InvalidInput
from xueliang.geography import LOCAL_TIME
from xueliang.stats import AlarmStats
from xueliang.web import DATABASE

DEFAULT_MONTHS = 6
MAX_MONTHS = 36


def period(request: web.Request) -> tuple[str, str, datetime, datetime]:
    """`from` and `to` months (YYYY-MM, local time, both included); the last six
    months by default."""
    today = datetime.now(LOCAL_TIME)
    default_to = f"{today.year:04d}-{today.month:02d}"
    back = today.year * 12 + today.month - 1 - (DEFAULT_MONTHS - 1)
    default_from = f"{back // 12:04d}-{back % 12 + 1:02d}"
    first = request.query.get("from", default_from)
    last = request.query.get("to", default_to)
    since, until = _month_start(first, "from"), _month_after(_month_start(last, "to"))
    if until <= since:
        raise InvalidInput("to", "must not be before from")
    if (until.year - since.year) * 12 + until.month - since.month > MAX_MONTHS:
        raise InvalidInput("to", f"a period is at most {MAX_MONTHS} months")
    return first, last, since, until


def _month_start(text: str, field: str) -> datetime:
    try:
        moment = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise InvalidInput(field, "must be a month like 2026-11") from None
    if not 2000 <= moment.year <= 2100:
        raise InvalidInput(field, "must be a month between 2000 and 2100")
    return moment.replace(tzinfo=LOCAL_TIME)


def _month_after(start: datetime) -> datetime:
    index = start.year * 12 + start.month
    return start.replace(year=index // 12, month=index % 12 + 1)


async def stats_page(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    try:
        first, last, since, until = period(request)
    except InvalidInput as e:
        return page(request, "centre/stats.html", session=session, problem=str(e), status=400,
                    first=request.query.get("from", "")[:7], last=request.query.get("to", "")[:7],
                    found=None, charts=[])  # fmt: skip
    found = await request.app[DATABASE].run_read(
        partial(stats.alarm_stats, scope=session.scope, since=since, until=until)
    )
    with i18n.speaking(request.app[TRANSLATIONS][language(request)]):
        drawn = _charts(found)
    return page(request, "centre/stats.html", session=session, problem=None, first=first,
                last=last, found=found, charts=drawn)  # fmt: skip


def _charts(found: AlarmStats) -> list[Markup]:
    _ = i18n.gettext
    empty = _("No alarms in this period.")
    villages = sorted({(c.village_name or _("Unregistered device")) for c in found.by_village_kind})
    kinds = sorted({c.kind for c in found.by_village_kind})
    counts = {((c.village_name or _("Unregistered device")), c.kind): c.count
              for c in found.by_village_kind}  # fmt: skip
    per_village = charts.stacked_bars(
        _("Alarms per village and kind"), villages,
        [(kind, [float(counts.get((v, kind), 0)) for v in villages]) for kind in kinds], empty,
    )  # fmt: skip
    drawn = [per_village]
    for level, title in (("town", _("Village and town")), ("county", _("County"))):
        rows = [t for t in found.timings if t.level == level]
        months = [t.month for t in rows]
        drawn.append(
            charts.grouped_bars(
                _("Seconds from alarm to acknowledgement and to resolution: %(level)s")
                % {"level": title},
                months,
                [(_("acknowledge p50"), [t.ack_p50_s for t in rows]),
                 (_("acknowledge p95"), [t.ack_p95_s for t in rows]),
                 (_("resolve p50"), [t.resolve_p50_s for t in rows]),
                 (_("resolve p95"), [t.resolve_p95_s for t in rows])],
                "s", empty,
            )
        )  # fmt: skip
    return drawn


async def stats_csv(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    first, last, since, until = period(request)
    db = request.app[DATABASE]
    body = await db.run_read(
        partial(stats.alarm_rows_csv, scope=session.scope, since=since, until=until)
    )
    await audit.record(db, auth.entry(request, session, "export.alarms_csv", f"{first}..{last}"))
    return csv_response(body, f"alarms-{session.staff.scope}-{first}-{last}.csv")


def setup(app: web.Application) -> None:
    app.router.add_get("/centre/stats", stats_page, name="centre_stats")
    app.router.add_get("/centre/stats.csv", stats_csv, name="centre_stats_csv")
