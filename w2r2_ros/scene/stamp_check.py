"""Time sanity for sensor stamps: refuse the future, and treat a big jump back as a new recording.

The scene memory orders everything by stamp and drops what goes backwards (``sync.py``). One
frame stamped far in the future therefore used to blind it: every later, correct frame was
"older than the previous one" and dropped, for as long as the bad stamp stayed ahead (a stamp of
now + 1e6 s: 11.6 days; issue 16, finding 2). So, before the memory sees a stamp:

- a stamp more than ``max_future_s`` ahead of the node's clock is refused (the sensor's clock is
  wrong, or the message is corrupt); ``max_future_s <= 0`` turns the check off, and so does a
  clock that reads 0 (ROS sim time before the first /clock message);
- a stamp more than ``jump_back_reset_s`` behind the newest stamp seen *on the same stream* means
  the clock jumped back: a looped bag, a restarted driver, a new recording. The memory cannot mix
  the two timelines, so the owner resets it (:meth:`SceneMemory.reset`) and starts afresh from
  this stamp, rather than dropping everything until the old time is reached again. Smaller steps
  back stay ordinary ``STAMP_BACKWARDS`` drops. Per stream, because streams lag each other:
  poses arrive up to ~1.2 s after the images of the same instant (``sync.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class StampVerdict(Enum):
    OK = "ok"
    FUTURE = "future"  # refuse the message
    JUMPED_BACK = "jumped_back"  # reset the memory, then take the message


@dataclass(frozen=True)
class StampCheckConfig:
    max_future_s: float = 10.0
    jump_back_reset_s: float = 5.0


class StampCheck:
    """Per-stream newest stamps and the verdict on each new one; not thread-safe (one executor thread calls it)."""

    def __init__(self, config: StampCheckConfig = StampCheckConfig()) -> None:
        self.config = config
        self._newest: dict[str, float] = {}

    def check(self, stream: str, stamp: float, now: float) -> StampVerdict:
        """The verdict on ``stamp`` (seconds) of ``stream`` at clock time ``now`` (seconds)."""
        if self.config.max_future_s > 0 and now > 0 and stamp > now + self.config.max_future_s:
            return StampVerdict.FUTURE
        newest = self._newest.get(stream)
        if newest is not None and self.config.jump_back_reset_s > 0 and stamp < newest - self.config.jump_back_reset_s:
            self._newest = {stream: stamp}  # every stream starts afresh with the memory
            return StampVerdict.JUMPED_BACK
        self._newest[stream] = stamp if newest is None else max(newest, stamp)
        return StampVerdict.OK

    def newest(self, stream: str) -> float | None:
        return self._newest.get(stream)
