"""The core every front door asks: settings, voice profiles and the voice catalogue, the
speaking service, audio conversion and the errors clients see. It knows no protocol."""
