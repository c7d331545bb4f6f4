"""wyoming-xtts' own health events: whether the server can speak, not just whether it answers.

`describe` → `info` proves the port is open; a failed model load or a provider that refuses the
credentials would pass it. `wyoming-xtts health` (Docker's HEALTHCHECK) therefore also sends a
`wyoming-xtts-health` event, answered with `wyoming-xtts-health-report`. Other clients never
send it, and other servers ignore it as the protocol says unknown events must be.
"""

from dataclasses import dataclass
from typing import Any

from wyoming.event import Event, Eventable

_QUESTION = "wyoming-xtts-health"
_REPORT = "wyoming-xtts-health-report"


@dataclass
class HealthQuestion(Eventable):
    """Asks whether the server can speak."""

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == _QUESTION

    def event(self) -> Event:
        return Event(type=_QUESTION)

    @staticmethod
    def from_event(event: Event) -> "HealthQuestion":
        return HealthQuestion()


@dataclass
class HealthReport(Eventable):
    """Whether the server can speak, and why not."""

    healthy: bool
    """It can speak now, after a load (unloaded on purpose), or through its fallback."""

    readiness: str
    """`ready`, `unloaded`, `degraded` or `failed` (`core.engine.Readiness`)."""

    detail: str = ""
    """One sentence when it is not simply ready."""

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == _REPORT

    def event(self) -> Event:
        data: dict[str, Any] = {"healthy": self.healthy, "readiness": self.readiness}
        if self.detail:
            data["detail"] = self.detail
        return Event(type=_REPORT, data=data)

    @staticmethod
    def from_event(event: Event) -> "HealthReport":
        data = event.data or {}
        return HealthReport(
            healthy=bool(data.get("healthy")),
            readiness=str(data.get("readiness", "")),
            detail=str(data.get("detail", "")),
        )
