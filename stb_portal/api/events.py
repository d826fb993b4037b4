"""`GET /api/v1/events`: every alarm change in the staff member's scope, as
Server-Sent Events, resumable with `Last-Event-ID` (the browser's EventSource sends
it by itself when it reconnects)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from stb_portal import auth
from stb_portal.keys import FEED
from xueliang import validation
from xueliang.alarm_feed import Change, Subscription
from xueliang.staff_sessions import StaffSession

RECHECK_SESSION_S = 60.0
RETRY_MS = 2000
MAX_BATCH = 500
READY_WAIT_S = 5.0


async def stream_events(request: web.Request, session: StaffSession) -> web.StreamResponse:
    feed = request.config_dict[FEED]
    try:
        async with asyncio.timeout(READY_WAIT_S):
            await feed.ready.wait()
    except TimeoutError:
        raise web.HTTPServiceUnavailable(
            text='{"error": "alarm events are not available yet; retry shortly"}',
            content_type="application/json",
            headers={"Retry-After": "2"},
        ) from None
    last = _last_event_id(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: pass events on at once
        }
    )
    await response.prepare(request)
    subscription = feed.subscribe()  # before catching up, so nothing falls in between
    try:
        head = [f"retry: {RETRY_MS}\n\n".encode()]
        sent: dict[int, int] = {}  # alarm → last event id the catch-up already sent
        if last is None:
            head.append(_frame("hello", feed.cursor, '{"resume": false}'))
        else:
            missed = await feed.since(last, session.scope)
            if missed is None:
                # Too much happened: the console reloads its list, then follows on.
                head.append(_frame("reset", feed.cursor, "{}"))
            else:
                head += [change.frame for change in missed]
                sent = {change.alarm: change.id for change in missed}
                head.append(_frame("hello", None, '{"resume": true}'))
        await response.write(b"".join(head))
        await _follow(request, response, session, subscription, sent)
    except ConnectionError:
        pass  # the console went away (closed tab, network): nothing to report
    finally:
        feed.unsubscribe(subscription)
    return response


async def _follow(
    request: web.Request,
    response: web.StreamResponse,
    session: StaffSession,
    subscription: Subscription,
    sent: dict[int, int],
) -> None:
    """Write what the feed queues, several events in one write when they pile up."""
    scope = session.scope
    queue = subscription.queue
    loop = asyncio.get_running_loop()
    recheck_at = loop.time() + RECHECK_SESSION_S
    while True:
        items = [await queue.get()]
        while not queue.empty() and len(items) < MAX_BATCH:
            items.append(queue.get_nowait())
        frames = [
            item.frame
            for item in items
            # A queued change older than what the catch-up sent would show a stale state.
            if isinstance(item, Change)
            and item.id > sent.get(item.alarm, 0)
            and item.visible_to(scope)
        ]
        if "keepalive" in items:
            frames.append(b": keepalive\n\n")
        if frames:
            await response.write(b"".join(frames))
        if subscription.lagging.is_set() or "end" in items:
            return  # the console reconnects and catches up by its last event id
        if "keepalive" in items and loop.time() >= recheck_at:
            if await auth.current(request) is None:
                return  # signed out or disabled: the stream ends, reconnecting fails
            recheck_at = loop.time() + RECHECK_SESSION_S


def _frame(event: str, ident: int | None, data: str) -> bytes:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def _last_event_id(request: web.Request) -> int | None:
    text = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    return None if text is None else validation.row_id(text)
