"""Speech engines: each turns (text, language, voice) into audio behind one small interface."""
