"""XTTS-v2 at a cloud provider, one prediction per segment: `engine.CloudEngine`, with one
module per provider (`replicate`, `pixazo`) over the shared HTTP mechanics (`http`)."""
