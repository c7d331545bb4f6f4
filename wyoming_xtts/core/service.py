"""What every front door is given: the voice catalogue, the speaking service, what the
program says about itself, and the writer of voice profiles. A front door needs nothing else, and never an engine."""

from dataclasses import dataclass

from .catalogue import VoiceCatalogue
from .engine import EngineInfo
from .profiles import ProfileStore
from .speaking import SpeakingService


@dataclass(frozen=True)
class Core:
    """The core one server process shares between its front doors."""

    catalogue: VoiceCatalogue
    """Voices by name: profiles on disk, then the engine's built-in speakers."""

    speaking: SpeakingService
    """Text in a voice → 16-bit mono PCM chunks at `speaking.sample_rate`."""

    program: EngineInfo
    """Name, description and attribution of the engine behind it, for `describe` and logs."""

    profiles: ProfileStore
    """Writes the voices directory the catalogue reads (the voice studio's changes)."""
