"""Another Wyoming text-to-speech server as an engine (`engine.WyomingClientEngine`): the
fallback `--fallback-engine tcp://HOST:PORT` speaks through, a Piper beside Home Assistant."""
