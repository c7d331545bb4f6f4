"""Failures that reach a Wyoming client as an `error` event.

Every failure a client can cause or observe is a `SpeechError` with a stable code from
`ErrorCode`: the text is for people and may change, the code is for programs and does not.
"""

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable machine-readable codes sent in the `code` field of `error` events."""

    VOICE_NOT_FOUND = "voice-not-found"
    """The requested voice is neither a voice profile nor a built-in speaker."""

    SPEAKER_NOT_FOUND = "speaker-not-found"
    """The voice has no speaking style (Wyoming's `speaker`) of that name."""

    VOICE_UNUSABLE = "voice-unusable"
    """The voice profile exists but its settings or clips cannot be used."""

    EMPTY_TEXT = "empty-text"
    """The request holds no speakable text."""

    TEXT_TOO_LONG = "text-too-long"
    """The request's text is longer than the server's documented limit."""

    LANGUAGE_UNSUPPORTED = "language-unsupported"
    """The language the voice would speak is not one the engine can speak."""

    BAD_REQUEST = "bad-request"
    """An event that does not fit the protocol: wrong fields, or out of order."""

    TOO_LARGE = "too-large"
    """An event's data or payload is larger than the server accepts."""

    TOO_MANY_CONNECTIONS = "too-many-connections"
    """The server already has --max-connections open; the connection is closed."""

    TOO_MANY_REQUESTS = "too-many-requests"
    """More than 8 requests were waiting on one connection; it is closed."""

    IDLE = "idle"
    """The connection sent nothing for --idle-timeout seconds and is closed."""

    SHUTTING_DOWN = "shutting-down"
    """The server is stopping: a request arriving now is refused, and a reply still being
    spoken when the grace period (--shutdown-grace) is over is cut short."""

    ENGINE_BUSY = "engine-busy"
    """The engine was speaking all it can at once with --max-waiting segments already
    queued; with --fallback-engine the fallback speaks the segment instead."""

    SYNTHESIS_FAILED = "synthesis-failed"
    """The engine failed while producing audio."""

    PROVIDER_AUTH = "provider-auth"
    """The cloud provider refused the API token or key (401/403)."""

    PROVIDER_BALANCE = "provider-balance"
    """The cloud provider account has no credit left (402)."""

    PROVIDER_REJECTED = "provider-rejected"
    """The cloud provider rejected the request's input (400/422); the text gives its reason."""

    PROVIDER_THROTTLED = "provider-throttled"
    """The cloud provider kept answering 429 beyond the retry budget."""

    PROVIDER_FAILED = "provider-failed"
    """The provider's prediction failed; the text gives the provider's error."""

    PROVIDER_UNAVAILABLE = "provider-unavailable"
    """The provider could not be reached or kept failing with server errors."""

    PROVIDER_TIMEOUT = "provider-timeout"
    """The provider did not deliver audio within the deadline (--provider-timeout)."""

    PROVIDER_BAD_AUDIO = "provider-bad-audio"
    """The provider's output was not readable audio, or was empty."""


class SpeechError(Exception):
    """A failure to report to the client, with a readable message and a stable code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
