"""Finished media to S3-compatible object storage, against a real server (moto_server).

The node's keys carry only the minimal policy of docs/operations.md (the server
enforces IAM), so every test here also shows that policy is enough.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from livecore.config import ObjectStoreSettings
from media.mediadir import MediaDir
from media.objectstore import ObjectStore, Unsatisfiable, chunks
from media.uploader import Uploader
from tests.s3server import BUCKET, PREFIX, REGION, S3Server

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(auth=True).start(tmp_path_factory.mktemp("s3") / "moto.log")
    yield server
    server.stop()


def settings(server: S3Server, *, port: int | None = None, prefix: str = PREFIX,
             retry_s: float = 30.0) -> ObjectStoreSettings:  # fmt: skip
    return ObjectStoreSettings(
        endpoint=f"http://127.0.0.1:{port or server.port}", bucket=BUCKET,
        access_key=server.node.access_key, secret_key=server.node.secret_key,
        region=REGION, prefix=prefix, retry_s=retry_s,
    )  # fmt: skip


def finished(media: MediaDir) -> list[Path]:
    """A clip, its thumbnail and a replay on disk, as the recording plane leaves them."""
    paths = [media.clip_path("r1", "0123456789ab", "mp4"),
             media.clip_path("r1", "0123456789ab", "jpg"), media.replay_path("r1")]  # fmt: skip
    for i, path in enumerate(paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * 1000 + b"end")
    return paths


def read(store: ObjectStore, path: Path, headers: dict[str, str] | None = None) -> bytes:
    body = store.open(path, headers)
    assert body is not None
    return b"".join(chunks(body))


def test_uploads_leave_the_disk_and_read_back(s3: S3Server, tmp_path: Path) -> None:
    """A clip, its thumbnail and a replay go to ``<prefix><path>`` and leave the disk;
    they read back whole and by range; a key never uploaded is None; fetch and delete."""
    media = MediaDir(tmp_path / "media")
    store = ObjectStore(settings(s3), media.root)
    results: list[str] = []
    uploader = Uploader(store, on_result=results.append)
    uploader.start()
    try:
        paths = finished(media)
        for path in paths:
            assert uploader.submit(path)
        assert uploader.wait_idle(30)
        assert results == ["uploaded"] * 3 and not any(p.exists() for p in paths)
        assert store.key(paths[2]) == f"{PREFIX}replay/r1.mp4"
        assert read(store, paths[0]) == b"\0" * 1000 + b"end"
        part = store.open(paths[2], {"Range": "bytes=998-"})
        assert part is not None and part.status == 206
        assert b"".join(chunks(part)) == b"\2\2end"
        with pytest.raises(Unsatisfiable):
            store.open(paths[2], {"Range": "bytes=5000-"})
        assert store.open(media.clip_path("r1", "ffffffffffff", "mp4")) is None
        assert store.fetch(paths[2]) and paths[2].read_bytes() == b"\2" * 1000 + b"end"
        store.delete(paths[0])
        assert store.open(paths[0]) is None
    finally:
        uploader.close()


def test_node_keys_reach_only_their_prefix(s3: S3Server, tmp_path: Path) -> None:
    """The node's policy: objects under its prefix only; it cannot list, create buckets,
    or touch another prefix. An uploader on a prefix it may not write keeps the file."""
    node = Minio(f"127.0.0.1:{s3.port}", access_key=s3.node.access_key,
                 secret_key=s3.node.secret_key, secure=False, region=REGION)  # fmt: skip
    node.put_object(BUCKET, f"{PREFIX}ok.bin", io.BytesIO(b"x"), 1)
    denied = [
        lambda: node.put_object(BUCKET, "other/x.bin", io.BytesIO(b"x"), 1),
        lambda: node.get_object(BUCKET, "other/x.bin"),
        lambda: node.remove_object(BUCKET, "other/x.bin"),
        lambda: list(node.list_objects(BUCKET, prefix=PREFIX)),
        lambda: node.make_bucket("another-bucket"),
    ]
    for attempt in denied:
        with pytest.raises(S3Error) as refused:
            attempt()
        assert refused.value.code == "AccessDenied"
    node.remove_object(BUCKET, f"{PREFIX}ok.bin")

    media = MediaDir(tmp_path / "media")
    uploader = Uploader(ObjectStore(settings(s3, prefix="other/"), media.root))
    uploader.start()
    try:
        clip = finished(media)[0]
        uploader.submit(clip)
        assert uploader.wait_idle(30)
        assert uploader.stats.failed == 1 and clip.exists()
    finally:
        uploader.close()
