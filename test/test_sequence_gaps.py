from w2r2_ros.ros.sequence_gaps import SequenceGaps


def test_messages_missing_between_two_that_arrived_are_counted_per_publisher():
    gaps = SequenceGaps()
    assert gaps.missed(b"a", 7) == 0  # joined late: nothing owed
    assert gaps.missed(b"a", 8) == 0
    assert gaps.missed(b"b", 1) == 0
    assert gaps.missed(b"a", 12) == 3
    assert gaps.missed(b"b", 3) == 1
    assert gaps.missed(b"a", 10) == 0  # late and out of order: already counted as missing once
    assert gaps.missed(b"a", 13) == 0
    assert gaps.missed(b"a", None) == 0


def test_a_forgotten_publisher_starts_again_without_a_gap():
    gaps = SequenceGaps(max_publishers=2)
    gaps.missed(b"a", 1)
    gaps.missed(b"b", 1)
    gaps.missed(b"a", 2)  # a heard more recently than b
    gaps.missed(b"c", 1)  # b forgotten
    assert gaps.missed(b"b", 9) == 0  # a forgotten now
    assert gaps.missed(b"c", 4) == 2
    assert gaps.missed(b"a", 5) == 0
