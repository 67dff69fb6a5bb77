"""HTTP for recorded media: HLS, replays, clip files, the clip library, marks, share page.

No token is needed to read (a neighbour opening a forwarded clip has no
account); deleting a clip and marking a moment take the room's host token.
Any node answers any media URL: from its own disk, from object storage when
configured (``signalling.routes.objectmedia``), or streamed through from the
node that wrote the file (:mod:`signalling.services.medialookup`, which also
sets the CDN-friendly ``Cache-Control``), with ``Range`` support. Every
name in a URL is checked against the media directory's naming rules before
it reaches a path or another node (``media.mediadir``); anything else is a
JSON 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.clips import parse_public_id, public_id
from livecore.errors import ErrorCode, LivecoreError
from media.hlsmaster import MASTER_NAME, PLAYLIST_RE
from media.mediadir import SEGMENT_RE, STREAM_RE
from signalling.node.http_boundary import authorize, ctx, limit_writes
from signalling.routes.pages import page
from signalling.services.hlswait import Directives
from signalling.services.medialookup import MediaLookup, Wanted
from signalling.services.recording import RecordingPlane

HOSTS = frozenset({tokens.Role.HOST, tokens.Role.ADMIN})


def plane(request: Request) -> RecordingPlane:
    found: RecordingPlane = request.app.state.recording
    return found


def lookup(request: Request) -> MediaLookup:
    found: MediaLookup = request.app.state.media_lookup
    return found


def _room(request: Request) -> str:
    room = str(request.path_params["room"])
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return room


def _missing(what: str) -> LivecoreError:
    return LivecoreError(ErrorCode.MEDIA_NOT_FOUND, f"no such media: {what}")


# -- HLS and replay (from any node: signalling.services.medialookup) -----------------


async def hls_playlist(request: Request) -> Response:
    """``GET /hls/{room}/{index.m3u8|L_index.m3u8|master.m3u8}[?_HLS_msn=..]``: the room's
    newest recording as LL-HLS (fMP4): the top layer's media playlist, another
    layer's, or the multivariant playlist over every recorded layer."""
    room = _room(request)
    name = str(request.path_params["playlist"])
    if name != MASTER_NAME and not PLAYLIST_RE.match(name):
        raise _missing(name)
    directives = Directives.from_query(request.query_params)
    if name == MASTER_NAME and directives.any:
        raise LivecoreError(ErrorCode.HLS_BAD_DIRECTIVE, "a multivariant playlist takes none")
    wanted = Wanted("playlist", room, name=name, directives=directives)
    return await lookup(request).respond(request, wanted)


async def hls_segment(request: Request) -> Response:
    """``GET /hls/{room}/{stream}/{init.mp4|segNNNNNN.m4s}``: immutable."""
    room = _room(request)
    stream, name = str(request.path_params["stream"]), str(request.path_params["name"])
    if not STREAM_RE.match(stream) or not SEGMENT_RE.match(name):
        raise _missing(f"{stream}/{name}")
    return await lookup(request).respond(request, Wanted("segment", room, stream, name))


async def replay(request: Request) -> Response:
    """``GET /replay/{room}.mp4[?v=VERSION]``: the room's replay as one faststart MP4
    (immutable when ``v`` names the current version, else cached 60 s)."""
    name = str(request.path_params["name"])
    room = name.removesuffix(".mp4")
    if room == name or not tokens.valid_id(room):
        raise _missing(name)
    version = request.query_params.get("v", "")
    if not STREAM_RE.match(version):
        version = ""
    return await lookup(request).respond(request, Wanted("replay", room, version=version))


async def clip_file(request: Request) -> Response:
    """``GET /media/clips/{room}~{clip}.mp4|.jpg``: immutable."""
    name = str(request.path_params["name"])
    stem, dot, ext = name.rpartition(".")
    parsed = parse_public_id(stem) if dot else None
    if parsed is None or ext not in ("mp4", "jpg"):
        raise LivecoreError(ErrorCode.CLIP_NOT_FOUND, f"no such clip file: {name}")
    room, clip = parsed
    return await lookup(request).respond(request, Wanted("clip", room, clip=clip, ext=ext))


# -- clip library ------------------------------------------------------------------


async def list_clips(request: Request) -> Response:
    """``GET /api/rooms/{room}/clips``: newest first, public."""
    room = _room(request)
    if await ctx(request).rooms.get(room) is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    clips = await plane(request).clips.list(room)
    return JSONResponse({"clips": [c.public() for c in clips]})


def _clip_hex(room: str, value: str) -> str:
    parsed = parse_public_id(value) if "~" in value else parse_public_id(public_id(room, value))
    if parsed is None or parsed[0] != room:
        raise LivecoreError(ErrorCode.CLIP_NOT_FOUND, f"no clip {value!r} in room {room!r}")
    return parsed[1]


async def delete_clip(request: Request) -> Response:
    """``DELETE /api/rooms/{room}/clips/{clip}``: the room's host removes a clip."""
    room = _room(request)
    await authorize(request, room=room, roles=HOSTS)
    limit_writes(request)
    clip = _clip_hex(room, str(request.path_params["clip"]))
    rec = plane(request)
    if not await rec.clips.delete(room, clip):
        raise LivecoreError(ErrorCode.CLIP_NOT_FOUND, f"no clip {clip!r} in room {room!r}")
    await rec.delete_clip_files(room, clip)
    return JSONResponse({"deleted": public_id(room, clip)})


async def get_clip(request: Request) -> Response:
    """``GET /api/clips/{room}~{clip}``: one clip and its room's public state."""
    value = str(request.path_params["clip"])
    parsed = parse_public_id(value)
    clip = await plane(request).clips.get(*parsed) if parsed else None
    if parsed is None or clip is None:
        raise LivecoreError(ErrorCode.CLIP_NOT_FOUND, f"no such clip: {value}")
    room = await ctx(request).rooms.get(parsed[0])
    return JSONResponse({"clip": clip.public(), "room": room.public() if room else None})


async def mark(request: Request) -> Response:
    """``POST /api/rooms/{room}/mark``: the host marks this moment as a highlight."""
    room = _room(request)
    await authorize(request, room=room, roles=HOSTS)
    limit_writes(request)
    at = await request.app.state.engagement.mark(room)
    if at is None:
        raise LivecoreError(ErrorCode.NOT_RECORDING, f"room {room!r} is not being recorded")
    return JSONResponse({"at": round(at, 3)}, status_code=202)


async def library_page(request: Request) -> Response:
    """``GET /clips/{room}[?ref=CODE]``: a room's clips with share links (the officer panel's
    "clips" link)."""
    _room(request)
    return page("clips")


async def share_page(request: Request) -> Response:
    """``GET /c/{room}~{clip}``: the share page (plays the clip, links into the room).

    Always the page: a clip that is gone is told to the shopper in words by the
    page itself (``GET /api/clips/...`` answers ``clip_not_found``)."""
    return page("clip")
