from __future__ import annotations

from workers.offsets import OffsetTracker

P = ("topic", 0)
Q = ("topic", 1)


def test_in_order() -> None:
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.started(P, offset)
    tracker.finished(P, 5)
    assert tracker.to_commit() == {P: 6}
    tracker.finished(P, 6)
    tracker.finished(P, 7)
    assert tracker.to_commit() == {P: 8}
    assert tracker.in_flight() == 0


def test_never_passes_an_unfinished_record() -> None:
    tracker = OffsetTracker()
    for offset in range(4):
        tracker.started(P, offset)
    tracker.finished(P, 1)
    tracker.finished(P, 3)
    assert tracker.to_commit() == {}
    tracker.finished(P, 0)
    assert tracker.to_commit() == {P: 2}
    tracker.finished(P, 2)
    assert tracker.to_commit() == {P: 4}


def test_reports_only_moved_points_per_partition() -> None:
    tracker = OffsetTracker()
    tracker.started(P, 0)
    tracker.started(Q, 10)
    tracker.finished(P, 0)
    tracker.finished(Q, 10)
    points = tracker.to_commit()
    assert points == {P: 1, Q: 11}
    tracker.committed(points)
    assert tracker.to_commit() == {}
    tracker.started(P, 1)
    tracker.finished(P, 1)
    assert tracker.to_commit() == {P: 2}


def test_forget_ignores_late_completions() -> None:
    tracker = OffsetTracker()
    tracker.started(P, 0)
    tracker.forget({P})
    tracker.finished(P, 0)
    assert tracker.to_commit() == {}
    assert tracker.in_flight(P) == 0
