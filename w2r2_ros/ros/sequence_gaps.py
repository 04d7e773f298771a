"""Messages that never arrived, counted from their publishers' sequence numbers.

The middleware's ``message_lost`` event does not see every loss: a CI run had one of three
32 MB clouds arrive from another process and no event at all (docs/RELIABILITY.md). Every
message a DDS writer sends carries the writer's own sequence number (rclpy hands it to a
subscription callback that takes a second argument, ``MessageInfo``), so a reader can count
what is missing between two messages that did arrive from one publisher, whatever lost them:
the transport, or a keep-last queue that overflowed while the callbacks were busy. What was
lost after the last message that arrived stays unseen until the next one comes.
"""
from __future__ import annotations

from collections import OrderedDict


class SequenceGaps:
    """The newest sequence number seen per publisher (at most ``max_publishers``, least recently heard forgotten)."""

    def __init__(self, max_publishers: int = 64) -> None:
        self.max_publishers = max_publishers
        self._newest: OrderedDict[bytes, int] = OrderedDict()

    def missed(self, publisher: bytes, sequence: int | None) -> int:
        """How many of ``publisher``'s messages are missing between the newest seen and ``sequence``.

        0 for its first message (a reader that joins late has missed nothing it was owed), for a
        middleware that gives no sequence number (None), and for one older than the newest seen.
        """
        if sequence is None:
            return 0
        newest = self._newest.pop(publisher, None)
        self._newest[publisher] = sequence if newest is None else max(newest, sequence)
        while len(self._newest) > self.max_publishers:
            self._newest.popitem(last=False)
        return 0 if newest is None or sequence <= newest else sequence - newest - 1
