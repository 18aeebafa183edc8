"""``streamgan serve``: the live filter in a browser, over WebRTC (aiortc on aiohttp).

The page at ``/`` sends the browser's camera (or a screen) and plays the translated track that
comes back, with its own figures in ``window.streamganStats``: fps, glass-to-glass latency measured
by frame identity (the page stamps a frame number into a strip of its outgoing picture, the
server copies that strip onto the translated picture, the page reads it back off ``#output``),
dropped and skipped. WHIP ingest (``POST /whip``, an SDP offer; 201, the answer and a Location
to DELETE) and WHEP playback (``POST /whep``, or ``/whep/<session>``) of the newest session's
translation let OBS send a scene and any WHEP player watch.

The event loop never runs a model: one worker thread holds the engine and serves every session,
the newest frame of each first (a frame replaced before it was taken is dropped, and counted);
each session has its own translator (normalisation statistics) and temporal smoother. At most
``max_sessions`` send at once; one more is answered 503 "busy". Safe by default: it binds
127.0.0.1; another address needs a token (made and printed when not given) on every request,
frames are capped at ``max_size``, malformed requests get 4xx without touching the others, a
client that vanishes is dropped within 10 s, and only the page itself is served from disk.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines.base import Engine

from ..errors import OptionError
from ..latency import LatencyLog
from ..media.video import Frame
from ..pipeline import Stage
from ..temporal import TEMPORAL_MODES, make_smoother
from ..translate.content_check import ContentCheck
from ..translate.translator import TranslateOptions, Translator

PAGE = Path(__file__).parents[1] / "assets" / "serve_page.html"
STAMP_ROWS, STAMP_BITS, STAMP_BLOCK = 8, 16, 8  # the page's frame-number strip: 16 blocks of 8x8 px, top left
IDLE_S = 10.0  # a session with no frame and no open connection for this long is closed
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Settings:
    """What a viewer may change while a session runs (the page's controls)."""

    side_by_side: bool = False
    temporal: str = "off"
    strength: float | None = None
    skip_similar: float | None = None
    paused: bool = False
    stamp: bool = False  # the input carries the page's frame-number strip: copy it onto the output

    def update(self, d: dict) -> None:
        if "side_by_side" in d:
            self.side_by_side = bool(d["side_by_side"])
        if "temporal" in d:
            if d["temporal"] not in TEMPORAL_MODES:
                raise ValueError(f"temporal must be one of {', '.join(TEMPORAL_MODES)}")
            self.temporal = d["temporal"]
        if "strength" in d:
            s = None if d["strength"] is None else float(d["strength"])
            if s is not None and not 0 <= s < 1:
                raise ValueError("strength must be in [0, 1)")
            self.strength = s
        if "skip_similar" in d:
            t = None if d["skip_similar"] in (None, 0) else float(d["skip_similar"])
            if t is not None and not 0 < t < 1:
                raise ValueError("skip_similar must be in (0, 1)")
            self.skip_similar = t
        if "paused" in d:
            self.paused = bool(d["paused"])
        if "stamp" in d:
            self.stamp = bool(d["stamp"])


@dataclass
class Session:
    """One sender's frames through the shared worker, its own state and counters, and the track
    its translation goes out on."""

    id: str
    kind: str  # "page", "whip" or "local"
    settings: Settings
    stage: Stage  # the pipeline's translate + smoothing step, with its precision check
    output: object  # translated_track(): the track its translation goes out on
    pc: object = None
    created: float = field(default_factory=time.monotonic)
    last_frame: float = field(default_factory=time.monotonic)
    counters: dict = field(default_factory=lambda: {"received": 0, "translated": 0, "dropped": 0, "skipped": 0})
    latency: LatencyLog = field(default_factory=LatencyLog)
    pending: tuple | None = None  # (frame, arrival) waiting for the worker
    smoother_key: tuple = ()
    last_in: np.ndarray | None = None
    last_out: np.ndarray | None = None
    closed: bool = False
    viewers: list = field(default_factory=list)  # WHEP peer connections watching it

    def stats(self) -> dict:
        lat = self.latency.summary().get("server", {})
        return {"id": self.id, "kind": self.kind, **self.counters,
                "server_latency_ms": {k: lat.get(k) for k in ("p50", "p95", "p99")},
                "settings": self.settings.__dict__}


_TRACK = []


def translated_track(loop: asyncio.AbstractEventLoop):
    """A session's outgoing video track: the newest translated frame, as it comes (``put`` from
    any thread). The class is made on first use: aiortc is imported only when serving."""
    if not _TRACK:
        from aiortc import MediaStreamTrack

        class TranslatedTrack(MediaStreamTrack):
            kind = "video"

            def __init__(self, loop):
                super().__init__()
                self.loop = loop
                self.queue: asyncio.Queue = asyncio.Queue(maxsize=1)

            def put(self, frame) -> None:
                def put_now():
                    if self.queue.full():
                        self.queue.get_nowait()
                    self.queue.put_nowait(frame)
                self.loop.call_soon_threadsafe(put_now)

            async def recv(self):
                return await self.queue.get()
        _TRACK.append(TranslatedTrack)
    return _TRACK[0](loop)


class Worker(threading.Thread):
    """The one thread that runs the engine: each session's newest frame in turn."""

    def __init__(self, server: "Server"):
        super().__init__(daemon=True, name="translate")
        self.server = server
        self.cond = threading.Condition()
        self.stopping = False

    def offer(self, session: Session, frame, arrival: float) -> None:
        with self.cond:
            if session.pending is not None:
                session.counters["dropped"] += 1
            session.pending = (frame, arrival)
            session.counters["received"] += 1
            session.last_frame = time.monotonic()
            self.cond.notify()

    def run(self) -> None:
        turn = 0
        while True:
            with self.cond:
                ready = []
                while not self.stopping:
                    ready = [s for s in self.server.sessions.values() if s.pending is not None and not s.closed]
                    if ready:
                        break
                    self.cond.wait(0.5)
                if self.stopping:
                    return
                session = ready[turn % len(ready)]
                turn += 1
                frame, arrival = session.pending
                session.pending = None
            try:
                self.translate(session, frame, arrival)
            except Exception as exc:  # one session's failure must not stop the others
                self.server.log(f"session {session.id}: {exc.__class__.__name__}: {exc}")
                session.closed = True

    def translate(self, session: Session, frame, arrival: float) -> None:
        import av
        s = session.settings
        # a WebRTC frame, or a local camera's Frame (already RGB: no round trip through av)
        rgb = frame.rgb if isinstance(frame, Frame) else frame.to_ndarray(format="rgb24")
        rgb = self.server.capped(rgb)
        if s.paused:
            session.counters["dropped"] += 1
            return
        if s.skip_similar and session.last_in is not None and session.last_out is not None and \
                session.last_in.shape == rgb.shape:
            from ..pipeline import similar
            if similar(rgb, session.last_in) < s.skip_similar:
                session.counters["skipped"] += 1
                out = session.last_out
                return self.send(session, frame, out, rgb, arrival, av)
        key = (s.temporal, s.strength)
        if key != session.smoother_key:
            session.stage.smoother = make_smoother(s.temporal, s.strength)
            session.smoother_key = key
        (_, out), = session.stage.submit(Frame(rgb, None, None, session.counters["translated"]))
        session.last_in, session.last_out = rgb, out
        session.counters["translated"] += 1
        self.send(session, frame, out, rgb, arrival, av)

    def send(self, session: Session, frame, out: np.ndarray, rgb: np.ndarray, arrival: float, av) -> None:
        s = session.settings
        if s.side_by_side:
            out = np.concatenate([rgb, out], axis=1)
        elif s.stamp:  # the page's frame number, carried through (glass-to-glass latency by identity)
            out = out.copy()
            w = min(STAMP_BITS * STAMP_BLOCK + 2 * STAMP_BLOCK, out.shape[1])
            out[:STAMP_ROWS, :w] = rgb[:STAMP_ROWS, :w]
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="rgb24")
        vf.pts, vf.time_base = frame.pts, frame.time_base
        session.output.put(vf)
        session.latency.add("server", time.perf_counter() - arrival)


class Server:
    """The sessions, the worker and the HTTP/WebRTC front."""

    def __init__(self, engine: Engine, options: TranslateOptions | None = None, *, max_sessions: int = 2,
                 max_size: tuple[int, int] = (1280, 720), token: str | None = None, bitrate: int = 2_500_000,
                 codec: str = "any", log=None):
        if max_sessions < 1:
            raise OptionError("--max-sessions must be >= 1")
        self.engine, self.options = engine, options
        self.max_sessions, self.max_size, self.token = max_sessions, max_size, token
        self.bitrate, self.codec = bitrate, codec
        self.sessions: dict[str, Session] = {}
        self.worker = Worker(self)
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.local_source = None  # a live source on this machine (``webcam --view browser``)
        self.local: Session | None = None  # its session, made when the server starts

    def capped(self, rgb: np.ndarray) -> np.ndarray:
        """A frame larger than ``max_size`` scaled down to fit (the aspect kept)."""
        h, w = rgb.shape[:2]
        mw, mh = self.max_size
        scale = min(1.0, mw / w, mh / h)
        if scale >= 1.0:
            return rgb
        import cv2
        size = (max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)

    # -- sessions ------------------------------------------------------------------------------

    def _senders(self) -> int:
        return sum(1 for s in self.sessions.values() if s.kind in ("page", "whip") and not s.closed)

    def new_session(self, kind: str, settings: Settings | None = None) -> Session:
        translator = Translator(self.engine, _copy(self.options))
        stage = Stage(translator, overlap=False, check=ContentCheck(translator, int8=False))  # (as live/run.py)
        session = Session(uuid.uuid4().hex[:12], kind, settings or Settings(), stage, translated_track(self.loop))
        self.sessions[session.id] = session
        return session

    async def close_session(self, session: Session, why: str) -> None:
        if session.id not in self.sessions:
            return
        session.closed = True
        self.sessions.pop(session.id, None)
        for pc in [session.pc, *session.viewers]:
            if pc is not None:
                await pc.close()
        check, engine = session.stage.check, session.stage.translator.engine
        self.log(f"session {session.id} ({session.kind}) closed: {why}; " + ", ".join(
            f"{k} {v}" for k, v in session.counters.items())
            + f"; {engine.describe()}, precision {check.describe() or engine.meta.precision}")

    def newest(self) -> Session | None:
        live = [s for s in self.sessions.values() if not s.closed]
        return max(live, key=lambda s: s.created) if live else None

    async def reap(self) -> None:
        """Every 2 s: close sessions whose connection failed or that sent nothing for IDLE_S."""
        while True:
            await asyncio.sleep(2.0)
            now = time.monotonic()
            for s in list(self.sessions.values()):
                state = getattr(s.pc, "connectionState", "connected") if s.pc is not None else "connected"
                if s.kind != "local" and (state in ("failed", "closed") or now - s.last_frame > IDLE_S):
                    await self.close_session(s, "connection " + state if state in ("failed", "closed")
                                             else f"no frame for {IDLE_S:g} s")

    # -- WebRTC ---------------------------------------------------------------------------------

    def _configure_codecs(self) -> None:
        """aiortc's encoders run at the bit rate asked for (a receiver's estimate moves it between
        that and 1.5 times it; a loopback or LAN link has the room)."""
        import aiortc.codecs.h264 as h264
        import aiortc.codecs.vpx as vpx
        for mod in (h264, vpx):
            mod.DEFAULT_BITRATE = mod.MIN_BITRATE = self.bitrate
            mod.MAX_BITRATE = int(self.bitrate * 1.5)

    def _prefer_codec(self, pc) -> None:
        if self.codec == "any":
            return
        from aiortc import RTCRtpSender
        want = {"h264": "video/H264", "vp8": "video/VP8"}[self.codec]
        codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType in (want, "video/rtx")]
        for t in pc.getTransceivers():
            if t.kind == "video":
                t.setCodecPreferences(codecs)

    async def answer_sender(self, sdp: str, kind: str, settings: Settings) -> tuple[Session, str]:
        """A peer that sends video (the page, a WHIP client): its frames go to the worker; the page
        also gets the translation back on the same connection."""
        from aiortc import RTCPeerConnection, RTCSessionDescription
        session = self.new_session(kind, settings)
        pc = RTCPeerConnection()
        session.pc = pc

        @pc.on("track")
        def on_track(track):
            if track.kind != "video":
                return
            if kind == "page":
                pc.addTrack(session.output)
            asyncio.ensure_future(self._pump(session, track))

        @pc.on("datachannel")
        def on_channel(channel):
            @channel.on("message")
            def on_message(message):
                try:
                    session.settings.update(json.loads(message))
                except (ValueError, TypeError) as exc:
                    channel.send(json.dumps({"error": str(exc)}))
            asyncio.ensure_future(self._report(session, channel))

        @pc.on("connectionstatechange")
        async def on_state():
            if pc.connectionState in ("failed", "closed"):
                await self.close_session(session, f"connection {pc.connectionState}")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self._prefer_codec(pc)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            await self.close_session(session, "a malformed offer")
            raise
        self.log(f"session {session.id} ({kind}) opened")
        return session, pc.localDescription.sdp

    async def answer_viewer(self, sdp: str, session: Session) -> tuple[str, object]:
        """A peer that only watches (WHEP, the page in view mode): it gets the session's translation."""
        from aiortc import RTCPeerConnection, RTCSessionDescription
        from aiortc.contrib.media import MediaRelay
        if not hasattr(session, "relay"):
            session.relay = MediaRelay()
        pc = RTCPeerConnection()
        session.viewers.append(pc)
        pc.addTrack(session.relay.subscribe(session.output, buffered=False))

        @pc.on("connectionstatechange")
        async def on_state():
            if pc.connectionState in ("failed", "closed") and pc in session.viewers:
                session.viewers.remove(pc)
                await pc.close()
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self._prefer_codec(pc)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            session.viewers.remove(pc)
            await pc.close()
            raise
        return pc.localDescription.sdp, pc

    async def _pump(self, session: Session, track) -> None:
        """A sender's frames, as they arrive, to the worker (newest wins)."""
        from aiortc.mediastreams import MediaStreamError
        try:
            while not session.closed:
                frame = await track.recv()
                self.worker.offer(session, frame, time.perf_counter())
        except MediaStreamError:
            await self.close_session(session, "its track ended")

    async def _report(self, session: Session, channel) -> None:
        """The session's counters to the page, every second."""
        while not session.closed and channel.readyState in ("connecting", "open"):
            if channel.readyState == "open":
                channel.send(json.dumps({"stats": session.stats()}))
            await asyncio.sleep(1.0)

    # -- HTTP -----------------------------------------------------------------------------------

    def app(self):
        from aiohttp import web

        @web.middleware
        async def guard(request, handler):
            if self.token is not None and request.path != "/favicon.ico":
                given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix(
                    "Bearer ").strip()
                if not secrets.compare_digest(given or "", self.token):
                    return web.json_response({"error": "a token is needed: open the URL the server printed"},
                                             status=401)
            try:
                return await handler(request)
            except web.HTTPException:
                raise
            except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
                return web.json_response({"error": f"bad request: {exc}"}, status=400)

        app = web.Application(middlewares=[guard], client_max_size=256 * 1024)
        app.router.add_get("/", self.page)
        app.router.add_post("/offer", self.offer)
        app.router.add_post("/whip", self.whip)
        app.router.add_delete("/whip/{id}", self.end)
        app.router.add_post("/whep", self.whep)
        app.router.add_post("/whep/{id}", self.whep)
        app.router.add_delete("/whep/{id}/{viewer}", self.end_viewer)
        app.router.add_get("/stats", self.stats)
        app.on_startup.append(self._startup)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _startup(self, app) -> None:
        self.loop = asyncio.get_running_loop()
        self._configure_codecs()
        self.worker.start()
        app["reaper"] = asyncio.ensure_future(self.reap())
        if self.local_source is not None:
            self.local = self._local_session(self.local_source)

    def _local_session(self, source) -> Session:
        """A session fed from a live source on this machine (a camera), on a thread of its own."""
        session = self.new_session("local")

        def feed():
            try:
                for frame in source:
                    self.worker.offer(session, frame, frame.arrival)
            finally:
                self.log(f"the local source ended{': ' + source.error if source.error else ''}")
        threading.Thread(target=feed, daemon=True, name="camera").start()
        return session

    async def _shutdown(self, app) -> None:
        app["reaper"].cancel()
        for s in list(self.sessions.values()):
            await self.close_session(s, "the server stopped")
        with self.worker.cond:
            self.worker.stopping = True
            self.worker.cond.notify()

    async def page(self, request):
        from aiohttp import web
        return web.Response(text=PAGE.read_text(), content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    def _busy(self):
        from aiohttp import web
        return web.json_response({"error": "busy", "sessions": self.max_sessions}, status=503,
                                 headers={"Retry-After": "10"})

    async def offer(self, request):
        """The page's own session: JSON {sdp, type: "offer", settings}; the answer as JSON."""
        from aiohttp import web
        body = await request.json()
        if not isinstance(body, dict) or body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
            raise ValueError("expected JSON {sdp, type: 'offer'}")
        _video_offer(body["sdp"])
        if body.get("view"):  # the page watching a camera on this machine, or the newest session
            target = self.local or self.newest()
            if target is None:
                return web.json_response({"error": "nothing to watch yet"}, status=404)
            sdp, _ = await self.answer_viewer(body["sdp"], target)
            return web.json_response({"sdp": sdp, "type": "answer", "session": target.id})
        if self._senders() >= self.max_sessions:
            return self._busy()
        settings = Settings()
        settings.update(body.get("settings") or {})
        session, sdp = await self.answer_sender(body["sdp"], "page", settings)
        return web.json_response({"sdp": sdp, "type": "answer", "session": session.id})

    async def _sdp(self, request) -> str:
        if request.content_type != "application/sdp":
            raise ValueError("expected Content-Type: application/sdp")
        return _video_offer(await request.text())

    async def whip(self, request):
        """WHIP ingest: an SDP offer in; 201 with the answer and the session's Location."""
        from aiohttp import web
        sdp = await self._sdp(request)
        if self._senders() >= self.max_sessions:
            return self._busy()
        session, answer = await self.answer_sender(sdp, "whip", Settings())
        return web.Response(status=201, text=answer, content_type="application/sdp",
                            headers={"Location": f"/whip/{session.id}", "ETag": session.id})

    async def whep(self, request):
        """WHEP playback of a session's translation (the newest when none is named)."""
        from aiohttp import web
        sdp = await self._sdp(request)
        wanted = request.match_info.get("id")
        session = self.sessions.get(wanted) if wanted else (self.local or self.newest())
        if session is None or session.closed:
            return web.json_response({"error": "no such session" if wanted else "nothing to watch yet"},
                                     status=404)
        answer, pc = await self.answer_viewer(sdp, session)
        viewer = uuid.uuid4().hex[:8]
        pc.viewer_id = viewer
        return web.Response(status=201, text=answer, content_type="application/sdp",
                            headers={"Location": f"/whep/{session.id}/{viewer}"})

    async def end(self, request):
        from aiohttp import web
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.json_response({"error": "no such session"}, status=404)
        await self.close_session(session, "the sender ended it")
        return web.Response(status=200)

    async def end_viewer(self, request):
        from aiohttp import web
        session = self.sessions.get(request.match_info["id"])
        pc = next((p for p in (session.viewers if session else []) if getattr(p, "viewer_id", None) ==
                   request.match_info["viewer"]), None)
        if pc is None:
            return web.json_response({"error": "no such viewer"}, status=404)
        session.viewers.remove(pc)
        await pc.close()
        return web.Response(status=200)

    async def stats(self, request):
        from aiohttp import web
        return web.json_response({"sessions": [s.stats() for s in self.sessions.values()],
                                  "max_sessions": self.max_sessions, "engine": self.engine.describe()})


def _video_offer(sdp: str) -> str:
    """``sdp`` if it is an SDP offer with a video section (checked before any session is made)."""
    from aiortc.sdp import SessionDescription
    if not sdp.startswith("v=0"):
        raise ValueError("not an SDP offer")
    try:
        media = SessionDescription.parse(sdp).media
    except Exception as exc:
        raise ValueError(f"not an SDP offer ({exc.__class__.__name__})") from None
    if not any(m.kind == "video" for m in media):
        raise ValueError("the offer has no video")
    return sdp


def _copy(options: TranslateOptions | None) -> TranslateOptions | None:
    import dataclasses
    return dataclasses.replace(options) if options is not None else None


def check_host(host: str, token: str | None) -> str | None:
    """The token a server on ``host`` needs: none on loopback (unless given), else the one given or
    a new one."""
    if host in LOOPBACK:
        return token
    return token or secrets.token_urlsafe(16)


def serve(engine: Engine, *, host: str = "127.0.0.1", port: int = 8080, options: TranslateOptions | None = None,
          max_sessions: int = 2, max_size: tuple[int, int] = (1280, 720), token: str | None = None,
          bitrate: int = 2_500_000, codec: str = "any", local=None, ready=None) -> None:
    """Serve until Ctrl-C. ``local``: a live source on this machine whose translation the page
    shows (``webcam --view browser``). ``ready(url)`` is called once the server listens."""
    from aiohttp import web
    token = check_host(host, token)
    server = Server(engine, options, max_sessions=max_sessions, max_size=max_size, token=token, bitrate=bitrate,
                    codec=codec)
    server.local_source = local
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "") + ("&view=1" if token and local else
                                                                           "?view=1" if local else "")

    async def main():
        runner = web.AppRunner(server.app(), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OptionError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
        print(f"serving on {url}", file=sys.stderr, flush=True)
        if ready is not None:
            ready(url)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
    asyncio.run(main())


def add_serve_args(p) -> None:
    from ..arguments import _engine_args, _tile_args
    _engine_args(p)
    _tile_args(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs a token, made when not given)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--token", default=None, help="a token every request must carry (?token=... or a Bearer header)")
    p.add_argument("--max-sessions", type=int, default=2, help="senders at once; one more is answered busy (default 2)")
    p.add_argument("--max-size", default="1280x720", help="larger frames are scaled down to fit WxH (default 1280x720)")
    p.add_argument("--bitrate", default="2.5M", help="bit rate of the translated stream (default 2.5M)")
    p.add_argument("--codec", choices=("any", "h264", "vp8"), default="any",
                   help="video codec of the connections (default any: the browser's first choice)")


def cmd_serve(args) -> int:
    from ..arguments import check_engine_args, open_engine_from_args, parse_size, translate_options
    from ..options import parse_bitrate
    check_engine_args(args)
    max_size = parse_size(args.max_size)
    bitrate = parse_bitrate(args.bitrate)
    if not 0 < args.port < 65536:
        raise OptionError("--port must be 1 to 65535")
    _need_webrtc()
    with open_engine_from_args(args, measure_compile=False) as engine:
        try:
            serve(engine, host=args.host, port=args.port, options=translate_options(args),
                  max_sessions=args.max_sessions, max_size=max_size, token=args.token, bitrate=bitrate,
                  codec=args.codec)
        except KeyboardInterrupt:
            print("streamgan: server stopped", file=sys.stderr)
    return 0


def _need_webrtc() -> None:
    try:
        import aiohttp  # noqa: F401
        import aiortc  # noqa: F401
    except ImportError:
        raise OptionError("serving needs aiohttp and aiortc", hint="pip install 'streamgan[live]'") from None


cmd_serve.add_args = add_serve_args
