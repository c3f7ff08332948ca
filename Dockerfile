# syntax=docker/dockerfile:1
# datasync image: `docker run IMAGE` ingests; `docker run IMAGE status|verify|mock-api ...` runs
# any other command. See docs/containers.md.

ARG PYTHON_IMAGE=python:3.11-slim-trixie

# --- build: wheels for the project and every dependency -------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY datasync_cli/ datasync_cli/
# datasync_cli/migrations is a symlink to ../migrations in the repository; .dockerignore leaves
# the link out of the context and the real files go where the package expects them, so the
# wheel never depends on how the build context treats symlinks.
COPY migrations/ datasync_cli/migrations/

RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
 && python -c "import glob, sys, zipfile; \
whl = glob.glob('/wheels/datasync_cli-*.whl')[0]; \
sql = [n for n in zipfile.ZipFile(whl).namelist() if n.startswith('datasync_cli/migrations/') and n.endswith('.sql')]; \
sys.exit(0 if sql else 'the wheel holds no datasync_cli/migrations/*.sql')"

# --- runtime: only the installed wheels, no compilers, no caches -----------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="datasync" \
      org.opencontainers.image.description="Move the DataSync Analytics API event stream into PostgreSQL" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json

# The wheels are bind-mounted from the build stage, so no layer keeps a copy of them.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/datasync_cli-*.whl \
 && useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin datasync

USER 10001:10001
WORKDIR /home/datasync

# A batch job has no endpoint to probe and its liveness is the process itself: when `ingest`
# dies the container exits and the restart policy resumes from the checkpoint. Long-running
# services started from this image (mock-api) get their probe in docker-compose.yml.
HEALTHCHECK NONE

ENTRYPOINT ["datasync"]
CMD ["ingest"]
