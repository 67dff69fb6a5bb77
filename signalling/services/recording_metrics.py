"""The recording plane's metric families (recordings, recorder drops, clips, replays, disk)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class RecordingMetrics:
    """Registered on the node's registry; shared by the plane and the highlights service."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.live = Gauge("livecore_recordings_live", "Streams being recorded", registry=r)
        self.skipped = Counter(
            "livecore_recordings_skipped_total", "Streams not recorded, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        self.dropped = Counter(
            "livecore_recorder_dropped_frames_total",
            "Frames the recorder dropped (queue full: dropped to the next keyframe)",
            registry=r,
        )
        self.clips = Counter(
            "livecore_clips_total", "Highlight clips, by result", ["result"], registry=r
        )
        self.cut_seconds = Counter(
            "livecore_clip_cut_seconds_total",
            "Wall seconds the media worker spent remuxing clips", registry=r,
        )  # fmt: skip
        self.cut_media_seconds = Counter(
            "livecore_clip_media_seconds_total", "Media seconds of the clips cut", registry=r
        )
        self.recorder_cpu = Counter(
            "livecore_recorder_cpu_seconds_total",
            "CPU seconds of the recorders' worker threads (added when a recording ends)",
            registry=r,
        )
        self.recorded = Counter(
            "livecore_recorded_media_seconds_total",
            "Media seconds recorded (added when a recording ends)", registry=r,
        )  # fmt: skip
        self.replays = Counter(
            "livecore_replays_total", "Replays built, by result", ["result"], registry=r
        )
        self.pruned = Counter(
            "livecore_media_pruned_bytes_total", "Bytes pruned for the disk budget", registry=r
        )
        self.uploads = Counter(
            "livecore_media_uploads_total",
            "Finished media put in object storage, by result (failed: kept on disk, tried "
            "again by the next sweep)", ["result"], registry=r,
        )  # fmt: skip
        self.over_budget = Gauge(
            "livecore_media_over_budget", "1 when live recordings alone exceed the budget",
            registry=r,
        )  # fmt: skip

        self.transcoding = Gauge(
            "livecore_recordings_transcoding",
            "Recordings being encoded here, by kind (vp8: a VP8 host's video to H.264; "
            "composite: a KOC's co-stream drawn into the host's picture)", ["kind"], registry=r,
        )  # fmt: skip
        self.transcode_cpu = Counter(
            "livecore_transcode_cpu_seconds_total",
            "CPU seconds of the recordings' transcoder and composer threads, by kind",
            ["kind"], registry=r,
        )  # fmt: skip
        self.transcode_dropped = Counter(
            "livecore_transcode_dropped_frames_total",
            "Frames a transcoder or composer dropped (queue full: to the next key frame)",
            ["kind"], registry=r,
        )  # fmt: skip

    def count_upload(self, result: str) -> None:
        """One upload tried (called on the uploader's thread; counters are thread-safe)."""
        self.uploads.labels(result).inc()
