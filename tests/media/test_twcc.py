"""Transport-cc feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): the
encoder against bytes computed by hand, the recorder (wrap, loss, reordering, late and
large deltas, bounds) through a decoder written apart (``tests.media.twccdecode``)."""

from __future__ import annotations

import random
import struct

from media.twcc import (
    HISTORY,
    LARGE_DELTA,
    MAX_WINDOW,
    NOT_RECEIVED,
    SMALL_DELTA,
    FeedbackRecorder,
    encode_feedback,
    status_chunks,
)
from tests.media.twccdecode import decode

S, L, N = SMALL_DELTA, LARGE_DELTA, NOT_RECEIVED


def test_run_length_chunk_bytes() -> None:
    """20 received packets, 1 ms apart, from base 65534: one run-length chunk, padded."""
    packet = encode_feedback(1, 2, 65534, 0x123456, 7, [S] * 20, [0] + [4] * 19)
    expected = bytes.fromhex("AFCD000A 00000001 00000002 FFFE0014 12345607 2014")
    expected += bytes([0] + [4] * 19) + bytes.fromhex("0002")
    assert packet == expected


def test_one_bit_status_vector_bytes() -> None:
    """received, lost, lost, received, received, lost, received: one 1-bit vector."""
    packet = encode_feedback(1, 2, 10, 1, 0, [S, N, N, S, S, N, S], [1, 2, 3, 4])
    expected = bytes.fromhex("AFCD0006 00000001 00000002 000A0007 00000100 A680 01020304 0002")
    assert packet == expected


def test_two_bit_status_vector_bytes() -> None:
    """A negative delta is large (2 bytes, signed): the statuses need a 2-bit vector."""
    packet = encode_feedback(1, 2, 10, 1, 0, [S, L, N, S], [5, -4, 10])
    expected = bytes.fromhex("AFCD0006 00000001 00000002 000A0004 00000100 D840 05FFFC0A 0002")
    assert packet == expected


def test_chunks_mix_runs_and_vectors() -> None:
    """A long loss is one run; a short mix one vector; a large delta forces 2-bit symbols."""
    assert status_chunks([N] * 300 + [S]) == [300, 0x2001]
    assert status_chunks([S] * 3 + [N] * 2) == [0x8000 | 0b11100000000000]
    assert status_chunks([S] * 8 + [L]) == [0x2008, 0x4001]
    assert status_chunks([S] * 14 + [L] * 2) == [0x200E, 0x4002]
    assert status_chunks([L, S] * 4) == [0xC000 | 0b10011001100110, 0x2001]


def test_unpadded_packet_has_no_padding_bit() -> None:
    """Two statuses and two small deltas end on a 32-bit boundary: no P bit."""
    packet = encode_feedback(1, 2, 0, 0, 0, [S, S], [1, 1])
    assert len(packet) == 24 and packet[0] == 0x8F


def feedback_of(recorder: FeedbackRecorder) -> list[tuple[int, int | None]]:
    out: list[tuple[int, int | None]] = []
    for packet in recorder.feedback(99):
        out += decode(packet)[3]
    return out


def test_wrap_and_loss() -> None:
    """Sequence numbers wrap at 2^16; a missing one is reported not received."""
    recorder = FeedbackRecorder()
    for seq, at_ms in [(65534, 0), (65535, 1), (1, 3), (2, 4)]:
        recorder.record(seq, 1_000_000 + at_ms * 1000, 1234)
    reported = feedback_of(recorder)
    assert [seq for seq, _ in reported] == [65534, 65535, 0, 1, 2]
    assert [at is None for _, at in reported] == [False, False, True, False, False]
    ticks = [at for _, at in reported if at is not None]
    assert [t - ticks[0] for t in ticks] == [0, 4, 12, 16]
    assert feedback_of(recorder) == []  # everything was reported once


def test_reordered_packets_are_reported_in_sequence_order() -> None:
    """A packet that overtook its predecessor: the predecessor gets a negative delta."""
    recorder = FeedbackRecorder()
    recorder.record(6, 1_000_000, 1)
    recorder.record(5, 1_002_000, 1)
    [packet] = recorder.feedback(99)
    _, _, _, reported = decode(packet)
    assert [(s, t) for s, t in reported] == [(5, 1_002_000 // 250), (6, 1_000_000 // 250)]
    assert status_chunks([S, L]) == [struct.unpack("!H", packet[20:22])[0]]


def test_late_packet_reopens_the_window() -> None:
    """A packet reported lost that arrives later is reported again, received."""
    recorder = FeedbackRecorder()
    recorder.record(1, 1_000_000, 1)
    recorder.record(3, 1_001_000, 1)
    assert [at is None for _, at in feedback_of(recorder)] == [False, True, False]
    recorder.record(2, 1_030_000, 1)
    recorder.record(4, 1_031_000, 1)
    assert [(s, at is None) for s, at in feedback_of(recorder)] == [
        (2, False), (3, False), (4, False),
    ]  # fmt: skip


def test_too_late_packet_is_dropped() -> None:
    """Behind the kept history a late packet is counted, not reported."""
    recorder = FeedbackRecorder()
    recorder.record(0, 0, 1)
    recorder.record(HISTORY + 10, 1000, 1)
    recorder.feedback(99)
    recorder.record(5, 2000, 1)
    assert recorder.late == 1 and feedback_of(recorder) == []


def test_delta_too_large_starts_a_new_packet() -> None:
    """9 s between two arrivals does not fit 16 bits of 250 µs: two feedback packets."""
    recorder = FeedbackRecorder()
    recorder.record(100, 1_000_000, 1)
    recorder.record(101, 10_000_000, 1)
    packets = recorder.feedback(99)
    assert len(packets) == 2
    first, second = (decode(p) for p in packets)
    assert [s for s, _ in first[3]] == [100] and [s for s, _ in second[3]] == [101]
    assert second[3][0][1] == 10_000_000 // 250 and (first[2], second[2]) == (0, 1)


def test_many_packets_are_split_and_memory_is_bounded() -> None:
    """Thousands of packets between two feedbacks: several packets, each under 1000 bytes,
    covering the last ``MAX_WINDOW`` sequence numbers; the arrivals kept stay bounded."""
    recorder = FeedbackRecorder()
    for seq in range(20_000):
        recorder.record(seq & 0xFFFF, seq * 100, 1)
    assert recorder.kept <= HISTORY + MAX_WINDOW
    packets = recorder.feedback(99)
    assert all(len(p) < 1000 for p in packets) and len(packets) > 1
    seqs = [s for p in packets for s, _ in decode(p)[3]]
    assert seqs == [s & 0xFFFF for s in range(20_000 - MAX_WINDOW, 20_000)]


def test_random_round_trip() -> None:
    """Loss, reordering, duplicates and wrap: every arrival decodes to its own tick."""
    rng = random.Random(23)
    recorder = FeedbackRecorder()
    truth: dict[int, int] = {}
    now = 5_000_000
    seq = 65000
    for _ in range(60):  # 60 feedback intervals
        batch = []
        for _ in range(rng.randrange(0, 40)):
            seq += 1
            now += rng.randrange(0, 3000)
            if rng.random() < 0.1:
                continue  # lost
            batch.append((seq & 0xFFFF, now))
        rng.shuffle(batch[: len(batch) // 3])
        for s, at in batch + batch[:2]:  # a few duplicates, which keep their first arrival
            recorder.record(s, at, 7)
            truth.setdefault(s, at // 250)
        for packet in recorder.feedback(99):
            media, _, _, reported = decode(packet)
            assert media == 7
            for s, at in reported:
                assert at == truth.get(s)
