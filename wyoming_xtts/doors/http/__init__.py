"""The HTTP front door: the voice studio (a page and its API) and an OpenAI-compatible speech
endpoint, served from the same process, model and voices as the Wyoming door."""
