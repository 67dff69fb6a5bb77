"""The uploader: a store that is down loses no file, and gets it once it answers
(a real S3 server, moto_server, started late)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from media.mediadir import MediaDir
from media.objectstore import ObjectStore
from media.uploader import Uploader
from tests.helpers import free_port
from tests.media.test_objectstore import finished, read, settings
from tests.s3server import S3Server
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(90)


async def test_a_store_that_is_down_keeps_the_files_and_gets_them_later(
    tmp_path: Path,
) -> None:
    """No server yet: the upload fails (urllib3's retries spent), the file stays; once the
    server answers, the next sweep uploads it and it leaves the disk."""
    port = free_port()
    media = MediaDir(tmp_path / "media")
    down = S3Server(auth=False, port=port)
    store = ObjectStore(settings(down, retry_s=1.0), media.root)
    # The sweep takes files older than SETTLE_S: this clock runs a minute ahead.
    uploader = Uploader(store, clock=lambda: time.time() + 60)
    paths = finished(media)
    uploader.start()  # its first sweep finds the three files
    try:
        await eventually(lambda: uploader.stats.failed >= 2, within=60, what="two sweeps failing")
        assert all(p.exists() for p in paths) and uploader.stats.uploaded == 0
        down.start(tmp_path / "moto.log")
        try:
            await eventually(lambda: not any(p.exists() for p in paths), within=30,
                             what="uploaded by a later sweep")  # fmt: skip
            assert read(store, paths[1]) == b"\1" * 1000 + b"end"
        finally:
            down.stop()
    finally:
        uploader.close()
