# wyoming-xtts in a container: the same install script as the README's, run as a non-root user.
#
#   docker build -t wyoming-xtts .                                   # local engine, CPU
#   docker build -t wyoming-xtts:cuda --build-arg TORCH_INDEX= .     # local engine, CUDA
#   docker build -t wyoming-xtts:proxy --build-arg EXTRAS=base .     # cloud proxy, no torch
#
#   docker run -p 10200:10200 -v ./voices:/voices -v xtts-data:/data \
#       -e COQUI_TOS_AGREED=1 wyoming-xtts [--device cuda] [--zeroconf --zeroconf-host HOST_IP]
#   (CUDA: add --gpus all; the NVIDIA container toolkit must be installed on the host)
FROM python:3.11-slim-bookworm

# "local" (XTTS-v2 on this machine) or "base" (cloud providers only).
ARG EXTRAS=local
# PyTorch's CPU wheel index keeps the image ~4 GB smaller; empty = PyPI's CUDA build.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

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
COPY script ./script
COPY wyoming_xtts ./wyoming_xtts
COPY voices ./voices-example
RUN PIP_EXTRA_INDEX_URL="${TORCH_INDEX}" script/install "${EXTRAS}" \
    && rm -f "${VENV}"/.installed-*

USER xtts
VOLUME ["/voices", "/data"]
EXPOSE 10200
HEALTHCHECK --interval=30s --timeout=10s --start-period=10m --retries=3 \
    CMD ["/opt/wyoming-xtts/bin/wyoming-xtts", "health"]
ENTRYPOINT ["/opt/wyoming-xtts/bin/wyoming-xtts"]
