"""Wyoming protocol text-to-speech server for Coqui XTTS-v2 voice cloning."""

__version__ = "0.1.0"
