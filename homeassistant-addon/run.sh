#!/usr/bin/with-contenv bashio
# Map the add-on options to wyoming-xtts options, announce the service to Home Assistant
# (the Supervisor's discovery API), then run the server.
set -euo pipefail

export WYOMING_XTTS_ENGINE="$(bashio::config 'engine')"
export WYOMING_XTTS_VOICES_DIR="$(bashio::config 'voices_dir')"
export WYOMING_XTTS_DATA_DIR=/data
export WYOMING_XTTS_DEVICE="$(bashio::config 'device')"
export WYOMING_XTTS_PRECISION="$(bashio::config 'precision')"
export WYOMING_XTTS_DEFAULT_LANGUAGE="$(bashio::config 'default_language')"
mkdir -p "${WYOMING_XTTS_VOICES_DIR}"

if bashio::config.true 'agree_cpml'; then export COQUI_TOS_AGREED=1; fi
if bashio::config.has_value 'default_voice'; then
    export WYOMING_XTTS_DEFAULT_VOICE="$(bashio::config 'default_voice')"
fi
if bashio::config.has_value 'replicate_api_token'; then
    export REPLICATE_API_TOKEN="$(bashio::config 'replicate_api_token')"
fi
if bashio::config.has_value 'pixazo_api_key'; then
    export PIXAZO_API_KEY="$(bashio::config 'pixazo_api_key')"
fi
if bashio::config.true 'cleanup_voice'; then export WYOMING_XTTS_CLEANUP_VOICE=1; fi
if bashio::config.false 'language_detection'; then export WYOMING_XTTS_NO_LANGUAGE_DETECTION=1; fi
if bashio::config.true 'debug_logging'; then export WYOMING_XTTS_DEBUG=1; fi

bashio::discovery "wyoming" "{\"uri\": \"tcp://$(hostname):10200\"}" > /dev/null \
    || bashio::log.warning "Home Assistant discovery failed; add the Wyoming integration by hand"

exec wyoming-xtts --uri tcp://0.0.0.0:10200
