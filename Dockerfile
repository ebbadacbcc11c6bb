# One image for every ckm process: watcher, worker, beat, flower, and the emulators.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 CKM_STATE_DIR=/var/lib/ckm
WORKDIR /opt/ckm

COPY pyproject.toml README.md ./
COPY ckm ckm
COPY config config
COPY contrail contrail
COPY emulators emulators
COPY tasks tasks
COPY watcher watcher
COPY workers workers
RUN pip install . && mkdir -p /var/lib/ckm && chown 65534:65534 /var/lib/ckm

USER 65534:65534
CMD ["ckm", "--help"]
