"""The relay with real ffmpeg on `testsrc2` and on a live HTTP source we can kill:
cold start, one ffmpeg for many viewers, idle stop, a failing or frozen camera
replaced by the slate and brought back, masks, the transcode cap, hostile requests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

import video_relay.app
from bench.procs import free_port
from tests.helpers import require_binary
from video_relay.keys import RELAY
from xueliang import cameras, video_urls
from xueliang.cameras import Mask
from xueliang.config import Settings
from xueliang.signing import load_secret_key
from xueliang.storage import Database
from xueliang.web import DATABASE, SECRET_KEY, create_app

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def relay_app(demo_dir: Path) -> web.Application:
    require_binary("ffmpeg")
    settings = Settings.model_validate(
        {"data_dir": str(demo_dir), "video": {"idle_grace_s": 2, "max_transcodes": 2}}
    )
    app = create_app(settings, load_secret_key(demo_dir))
    video_relay.app.setup(app)
    return app


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, relay_app: web.Application) -> Client:
    return await aiohttp_client(relay_app)


async def add_camera(db: Database, ident: str, url: str, masks: tuple[Mask, ...] = ()) -> None:
    async with db.transaction() as conn:
        await cameras.add(conn, id=ident, name=ident, village="qilong", url=url, masks=masks)


def url(client: Client, camera: str, output: str = "index.m3u8", profile: str = "") -> str:
    return video_urls.camera_url(client.app[SECRET_KEY], camera, output, 600, profile)


def decode(data: bytes, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert frame is not None, "not a JPEG"
    return frame


def ffprobe(path: Path, *args: str) -> dict[str, object]:
    out = subprocess.run(
        [require_binary("ffprobe"), "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def ffmpeg_children() -> list[int]:
    """ffmpeg processes started by this test process (the relay's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"ffmpeg" in cmdline.split(b"\0")[0]:
            found.append(int(entry.name))
    return found


async def test_cold_start_gives_a_playable_stb_playlist(client: Client, tmp_path: Path) -> None:
    """The first request waits for a segment instead of answering 404, and what it
    gets is what old boxes play: HLS version 3, MPEG-TS, H.264 Main ≤ 3.1, 1280x720,
    each segment starting with a keyframe."""
    started = time.monotonic()
    response = await client.get(url(client, "qilong-square"))
    assert response.status == 200, await response.text()
    body = await response.text()
    cold = time.monotonic() - started
    assert body.startswith("#EXTM3U\n#EXT-X-VERSION:3\n") and "#EXTINF:" in body
    assert cold < 10
    segment_url = next(line for line in body.splitlines() if line.startswith("seg/"))
    data = await (await client.get(f"/video/qilong-square/{segment_url}")).read()
    segment = tmp_path / "s.ts"
    segment.write_bytes(data)
    stream = ffprobe(segment, "-show_streams", "-select_streams", "v")["streams"][0]  # type: ignore[index]
    assert (stream["codec_name"], stream["profile"]) == ("h264", "Main")
    assert stream["level"] <= 31 and (stream["width"], stream["height"]) == (1280, 720)
    first = ffprobe(segment, "-show_packets", "-select_streams", "v", "-read_intervals", "%+#1")
    assert "K" in first["packets"][0]["flags"]  # type: ignore[index]


async def test_many_viewers_share_one_ffmpeg_that_stops_when_they_leave(client: Client) -> None:
    playlists = await asyncio.gather(*(client.get(url(client, "qilong-square")) for _ in range(10)))
    assert all(p.status == 200 for p in playlists)
    relay = client.app[RELAY]
    assert list(relay.producers) == ["qilong-square/stb"]
    assert len(ffmpeg_children()) == 1
    deadline = time.monotonic() + 15  # idle grace 2 s, then terminate
    while (relay.producers or ffmpeg_children()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert relay.producers == {} and ffmpeg_children() == []


@pytest.fixture
def http_source() -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A camera we can unplug: ffmpeg serving live MPEG-TS over HTTP on a free port."""
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(subprocess.Popen(
            [require_binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi",
             "-i", "testsrc2=size=640x360:rate=25", "-c:v", "libx264", "-preset", "ultrafast",
             "-g", "25", "-f", "mpegts", "-listen", "1", f"http://127.0.0.1:{port}/cam.ts"],
        ))  # fmt: skip

    start()
    yield f"http://127.0.0.1:{port}/cam.ts", processes
    for process in processes:
        process.kill()
        process.wait()


async def wait_state(client: Client, key: str, state: str, timeout: float = 30) -> None:
    relay = client.app[RELAY]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        producer = relay.producers.get(key)
        if producer is not None and producer.state == state:
            return
        await client.get(url(client, key.split("/")[0]))  # a viewer keeps it alive
        await asyncio.sleep(0.3)
    raise AssertionError(f"{key} never became {state}")


async def test_a_lost_camera_plays_the_slate_and_comes_back(
    client: Client, http_source: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    source, processes = http_source
    await add_camera(client.app[DATABASE], "gate", source)
    await wait_state(client, "gate/stb", "live")
    processes[0].kill()
    processes[0].wait()
    await wait_state(client, "gate/stb", "offline")
    before = await (await client.get(url(client, "gate"))).text()
    assert before.count("#EXTINF") >= 1  # the slate keeps the playlist going
    processes.append(subprocess.Popen(processes[0].args))  # noqa: ASYNC220  (plugged back in)
    await wait_state(client, "gate/stb", "live", timeout=40)
    after = await (await client.get(url(client, "gate"))).text()
    sequence = [int(line.split(":")[1]) for line in after.splitlines() if "MEDIA-SEQUENCE" in line]
    assert sequence and sequence[0] > 0  # numbering went on; never restarted at 0
    assert client.app[RELAY].producers["gate/stb"].restarts >= 1


async def test_a_frozen_ffmpeg_is_noticed_and_replaced(client: Client) -> None:
    await wait_state(client, "qilong-square/stb", "live")
    producer = client.app[RELAY].producers["qilong-square/stb"]
    producer.stall_s = 2.5
    [frozen] = ffmpeg_children()
    os.kill(frozen, signal.SIGSTOP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (frozen in ffmpeg_children() or producer.state != "live"):
        await client.get(url(client, "qilong-square"))
        await asyncio.sleep(0.3)
    assert frozen not in ffmpeg_children() and producer.state == "live"
    assert producer.restarts == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'xl_video_cameras{state="live"} 1.0' in metrics


async def test_masks_are_burnt_into_every_output(client: Client) -> None:
    masks = (Mask(x=0, y=0, w=0.25, h=0.25), Mask(x=0.5, y=0.5, w=0.25, h=0.25, fill="blur"))
    await add_camera(client.app[DATABASE], "masked", "testsrc://?size=1920x1080&rate=25", masks)
    response = await client.get(url(client, "masked", "snapshot.jpg"))
    assert response.status == 200 and response.content_type == "image/jpeg"
    frame = decode(await response.read(), cv2.IMREAD_GRAYSCALE)
    assert frame.shape == (720, 1280)
    black = frame[8:172, 8:312]
    assert black.mean() < 12 and black.std() < 6
    assert frame[200:700, 340:1200].std() > 20  # the rest is the picture
    blurred, sharp = frame[380:520, 660:940], frame[380:520, 340:620]
    assert cv2.Laplacian(blurred, cv2.CV_64F).var() < cv2.Laplacian(sharp, cv2.CV_64F).var() / 4
    refused = await client.get(url(client, "masked", profile="copy"))
    assert refused.status == 400  # never remuxed: the masks would be lost


async def test_the_transcode_cap_answers_busy_at_once(client: Client) -> None:
    db = client.app[DATABASE]
    for ident in ("second", "third"):
        await add_camera(db, ident, "testsrc://?size=640x360&rate=25")
    assert (await client.get(url(client, "qilong-square"))).status == 200
    assert (await client.get(url(client, "second"))).status == 200
    started = time.monotonic()
    busy = await client.get(url(client, "third"))
    assert busy.status == 503 and "busy" in await busy.text()
    assert busy.headers["Retry-After"] and time.monotonic() - started < 1


async def test_hostile_requests(client: Client) -> None:
    key = client.app[SECRET_KEY]
    good = url(client, "qilong-square")
    assert (await client.get(url(client, "no-such-camera"))).status == 404
    assert (await client.get("/video/qilong-square/index.m3u8")).status == 401
    forged = good.replace("sig=", "sig=A")[:-1]
    assert (await client.get(forged)).status == 403
    other_camera = video_urls.camera_url(key, "another", "index.m3u8", 600)
    stolen = other_camera.replace("/another/", "/qilong-square/")
    assert (await client.get(stolen)).status == 403  # a signature is for one camera
    expired = (
        f"/video/qilong-square/index.m3u8?{video_urls.signed_query(key, ['qilong-square', ''], -5)}"
    )
    assert (await client.get(expired)).status == 403
    assert (await client.get(good)).status == 200
    query = good.split("?", 1)[1]
    for bad in ("../../secret_key", "..%2F..%2Fsecret_key", "1;rm", "-1", "9" * 40, "0x10"):
        response = await client.get(f"/video/qilong-square/seg/{bad}.ts?{query}")
        assert response.status == 404, bad
    assert (await client.get(f"/video/qilong-square/../secret_key?{query}")).status == 404


async def test_a_camera_that_hangs_gets_the_slate_not_a_hang(client: Client) -> None:
    """A camera that accepts the connection and then says nothing: the viewer gets the
    offline slate within seconds, and the relay keeps retrying behind it."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepted, never answered

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await add_camera(client.app[DATABASE], "hanging", f"rtsp://user:secret@127.0.0.1:{port}/x")
    started = time.monotonic()
    response = await client.get(url(client, "hanging"))
    assert response.status == 200 and "#EXTINF" in await response.text()
    assert time.monotonic() - started < 10
    assert client.app[RELAY].producers["hanging/stb"].state == "offline"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_continuous_ts_mjpeg_and_small_stills(client: Client, tmp_path: Path) -> None:
    """Middleware players get one endless MPEG-TS; browsers without HLS get MJPEG or
    stills; set-top boxes get stills that decode to under 1 MB."""
    response = await client.get(url(client, "qilong-square", "stream.ts"))
    assert response.content_type == "video/mp2t"
    data = b""
    while len(data) < 400_000:
        data += await response.content.read(65536)
    producer = client.app[RELAY].producers["qilong-square/stb"]
    assert producer.viewers == 1
    response.close()
    (tmp_path / "stream.ts").write_bytes(data)
    stream = ffprobe(tmp_path / "stream.ts", "-show_streams")["streams"][0]  # type: ignore[index]
    assert stream["codec_name"] == "h264"

    mjpeg = await client.get(url(client, "qilong-square", "mjpeg"))
    assert mjpeg.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
    head = await mjpeg.content.readuntil(b"\r\n\r\n")
    assert head.startswith(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ")
    mjpeg.close()

    small = await client.get(url(client, "qilong-square", "snapshot.jpg") + "&small=1")
    frame = decode(await small.read())
    assert frame.shape[1] <= 640 and frame.shape[0] * frame.shape[1] * 4 <= 1024 * 1024
    await asyncio.sleep(0.5)
    assert producer.viewers == 0


async def test_village_mosaic(client: Client) -> None:
    db = client.app[DATABASE]
    await add_camera(db, "qilong-gate", "testsrc://?size=640x360&rate=25")
    key = client.app[SECRET_KEY]
    mosaic = video_urls.mosaic_url(key, "qilong", 600)
    response = await client.get(mosaic + "&small=1")
    assert response.status == 200 and response.content_type == "image/jpeg"
    frame = decode(await response.read())
    assert frame.shape[:2] == (360, 640)
    forged = video_urls.mosaic_url(key, "anxicun", 600).replace("anxicun", "qilong", 1)
    assert (await client.get(forged)).status == 403


async def test_the_moment_of_an_alarm_is_kept(client: Client, demo_dir: Path) -> None:
    """When an alarm is raised, each camera of its village is photographed; the town
    centre sees the pictures, another town's staff does not."""
    from tests.stb_portal.staff import demo_password
    from xueliang import staff_sessions
    from xueliang.alarms import RaiseRequest
    from xueliang.web import ALARMS

    [raised] = await client.app[ALARMS].raise_many(
        [RaiseRequest(source="tv", kind="fire", household="qilong-001")]
    )
    path = f"/video/alarms/{raised.alarm}/qilong-square.jpg"
    db = client.app[DATABASE]

    async def bearer(username: str) -> dict[str, str]:
        signed = await staff_sessions.sign_in(
            db, username, demo_password(demo_dir, username), kind="api", address=""
        )
        return {"Authorization": f"Bearer {signed.token}"}

    town = await bearer("puxing-centre")
    deadline = time.monotonic() + 30
    while (response := await client.get(path, headers=town)).status != 200:
        assert time.monotonic() < deadline, await response.text()
        await asyncio.sleep(0.3)
    assert response.content_type == "image/jpeg" and len(await response.read()) > 1000
    assert (await client.get(path, headers=await bearer("anxi-centre"))).status == 404
    assert (await client.get(path)).status == 401


async def test_a_masked_camera_cannot_be_registered_for_remuxing(client: Client) -> None:
    from xueliang.errors import InvalidInput

    with pytest.raises(InvalidInput, match="transcoded"):
        async with client.app[DATABASE].transaction() as conn:
            await cameras.add(
                conn, id="bad", name="bad", village="qilong", url="testsrc://",
                masks=(Mask(x=0, y=0, w=0.5, h=0.5),), profile="copy",
            )  # fmt: skip
