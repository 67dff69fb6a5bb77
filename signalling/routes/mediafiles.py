"""HTTP for recorded media: HLS, replays, clip files, the clip library, marks, share page.

No token is needed to read (a neighbour opening a forwarded clip has no
account); deleting a clip and marking a moment take the room's host token.
Files are served with ``Range`` support (starlette's ``FileResponse``), their
content types and CDN-friendly ``Cache-Control``: playlists for 1 s while
live, segments and clips ``immutable``. A finished file (clip, thumbnail,
replay) no longer on this node's disk is streamed from object storage when
it is configured (``signalling.routes.objectmedia``). Every name in a URL is checked
against the media directory's naming rules before it reaches a path
(``media.mediadir``); anything else is a JSON 404.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from livecore import tokens
from livecore.clips import parse_public_id, public_id
from livecore.errors import ErrorCode, LivecoreError
from signalling.node.http_boundary import authorize, ctx, limit_writes
from signalling.routes.objectmedia import from_object_store
from signalling.routes.pages import page
from signalling.services.recording import RecordingPlane

IMMUTABLE = "public, max-age=31536000, immutable"
LIVE_PLAYLIST = "public, max-age=1"
HOSTS = frozenset({tokens.Role.HOST, tokens.Role.ADMIN})
CORS = {"Access-Control-Allow-Origin": "*"}
TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".jpg": "image/jpeg",
}


def plane(request: Request) -> RecordingPlane:
    found: RecordingPlane = request.app.state.recording
    return found


def _room(request: Request) -> str:
    room = str(request.path_params["room"])
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return room


def _missing(what: str) -> LivecoreError:
    return LivecoreError(ErrorCode.MEDIA_NOT_FOUND, f"no such media: {what}")


def _file(path: Path | None, what: str, cache: str) -> Response:
    if path is None or not path.is_file():
        raise _missing(what)
    return FileResponse(
        path, media_type=TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": cache, **CORS},
    )  # fmt: skip


def _local(path: Path, cache: str) -> Response | None:
    return _file(path, path.name, cache) if path.is_file() else None


async def _finished(request: Request, path: Path, cache: str) -> Response | None:
    """A written file (clip, thumbnail, replay, HLS segment): from this node's disk, else
    from object storage (``signalling.routes.objectmedia``); None when neither has it."""
    local = _local(path, cache)
    if local is not None:
        return local
    media_type = TYPES.get(path.suffix, "application/octet-stream")
    return await from_object_store(request, path, media_type=media_type, cache=cache)


# -- HLS and replay ------------------------------------------------------------------


async def hls_playlist(request: Request) -> Response:
    """``GET /hls/{room}/index.m3u8``: the room's newest recording as HLS (fMP4)."""
    room = _room(request)
    media = plane(request).media
    directory = media.latest_stream(room)
    path = directory / "index.m3u8" if directory is not None else None
    if path is None or not path.is_file():
        # Not recorded here: the room's playlist in object storage (--s3-hls), if any.
        found = None
        if plane(request).hls_in_store:
            found = await from_object_store(
                request, media.room_playlist(room), media_type=TYPES[".m3u8"], cache=LIVE_PLAYLIST
            )
        if found is None:
            raise _missing(f"HLS of room {room!r}")
        return found
    text = path.read_text()
    cache = LIVE_PLAYLIST if "#EXT-X-ENDLIST" not in text else "public, max-age=60"
    return Response(
        text, media_type=TYPES[".m3u8"], headers={"Cache-Control": cache, **CORS}
    )  # fmt: skip


async def hls_segment(request: Request) -> Response:
    """``GET /hls/{room}/{stream}/{init.mp4|segNNNNNN.m4s}``: immutable."""
    room = _room(request)
    stream, name = str(request.path_params["stream"]), str(request.path_params["name"])
    rec = plane(request)
    path = rec.media.segment_path(room, stream, name)
    found = _local(path, IMMUTABLE) if path is not None else None
    if found is None and path is not None and rec.hls_in_store:
        found = await from_object_store(request, path, media_type=TYPES[path.suffix],
                                        cache=IMMUTABLE)  # fmt: skip
    if found is None:
        raise _missing(f"{stream}/{name}")
    return found


async def replay(request: Request) -> Response:
    """``GET /replay/{room}.mp4``: the room's last stream as one faststart MP4."""
    name = str(request.path_params["name"])
    room = name.removesuffix(".mp4")
    if room == name or not tokens.valid_id(room):
        raise _missing(name)
    # Stable URL: a later stream of the room replaces it, so caches revalidate.
    found = await _finished(request, plane(request).media.replay_path(room), "public, max-age=60")
    if found is None:
        raise _missing(name)
    return found


async def clip_file(request: Request) -> Response:
    """``GET /media/clips/{room}~{clip}.mp4|.jpg``."""
    name = str(request.path_params["name"])
    stem, dot, ext = name.rpartition(".")
    parsed = parse_public_id(stem) if dot else None
    if parsed is None or ext not in ("mp4", "jpg"):
        raise LivecoreError(ErrorCode.CLIP_NOT_FOUND, f"no such clip file: {name}")
    room, clip = parsed
    found = await _finished(request, plane(request).media.clip_path(room, clip, ext), IMMUTABLE)
    if found is None:
        raise LivecoreError(ErrorCode.CLIP_NOT_FOUND, f"no such clip file: {name}")
    return found


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
    service = plane(request).highlights(room)
    at = service.mark() if service is not None else None
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
