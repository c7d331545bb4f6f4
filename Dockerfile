# wyoming-xtts in a container: the same locked install as the README's, run as a non-root user.
#
#   docker build -t wyoming-xtts .                              # local engine (CPU, or CUDA with --gpus all)
#   docker build -t wyoming-xtts:proxy --build-arg FLAVOUR=proxy .   # cloud proxy, no PyTorch
#
#   docker run -p 10200:10200 -v ./voices:/voices:ro -v xtts-data:/data \
#       -e COQUI_TOS_AGREED=1 wyoming-xtts [--zeroconf --zeroconf-host HOST_IP]
#   (CUDA: add --gpus all; the NVIDIA container toolkit must be installed on the host)
#
# BASE_IMAGE: any Debian-like image with python3 (3.11-3.14) and its venv module;
# script/container-check builds this file on a Debian image made with debootstrap.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# "local" (XTTS-v2 in the container) or "proxy" (cloud providers only): a lock in locks/.
ARG FLAVOUR=local

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VENV=/opt/wyoming-xtts \
    WYOMING_XTTS_URI=tcp://0.0.0.0:10200 \
    WYOMING_XTTS_VOICES_DIR=/voices \
    WYOMING_XTTS_DATA_DIR=/data

RUN useradd --create-home --uid 1000 xtts \
    && mkdir -p /voices /data && chown xtts:xtts /voices /data

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY locks ./locks
COPY script ./script
COPY wyoming_xtts ./wyoming_xtts
COPY voices ./voices-example
RUN script/install "${FLAVOUR}" && rm -f "${VENV}"/.installed-*

USER xtts
VOLUME ["/voices", "/data"]
# 10201: the HTTP door (voice studio, OpenAI speech) when run with --http tcp://0.0.0.0:10201
EXPOSE 10200 10201
HEALTHCHECK --interval=30s --timeout=10s --start-period=10m --retries=3 \
    CMD ["/opt/wyoming-xtts/bin/wyoming-xtts", "health"]
ENTRYPOINT ["/opt/wyoming-xtts/bin/wyoming-xtts"]
