#!/usr/bin/with-contenv bashio
# The add-on's options become the server's environment: which option sets which variable is
# declared with the server's options themselves (wyoming_xtts/core/options.py, `addon`; mapped by core/option_exports.py).
# Then announce the service to Home Assistant (the Supervisor's discovery API) and serve.
set -euo pipefail

eval "$(python3 -m wyoming_xtts.core.option_exports addon-environment /data/options.json)"
export WYOMING_XTTS_DATA_DIR=/data
mkdir -p "${WYOMING_XTTS_VOICES_DIR:-/share/wyoming-xtts/voices}"

bashio::discovery "wyoming" "{\"uri\": \"tcp://$(hostname):10200\"}" > /dev/null \
    || bashio::log.warning "Home Assistant discovery failed; add the Wyoming integration by hand"

# The HTTP door on the ingress port: only the Supervisor's network reaches it, and the
# Supervisor lets only logged-in Home Assistant users through.
exec wyoming-xtts --uri tcp://0.0.0.0:10200 --http tcp://0.0.0.0:8099
