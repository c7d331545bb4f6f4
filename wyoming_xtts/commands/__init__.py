"""The `wyoming-xtts` sub-commands; without one, `wyoming-xtts` runs the server."""
