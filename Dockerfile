# One image for every service of docker-compose.yml: Meltano, every plugin of the
# project (installed here, never at run time) and Airflow (a Meltano utility
# plugin). Built with the same steps as `make setup` (scripts/setup.sh), no
# secrets inside: configuration comes from the environment at run time.
# PYTHON_IMAGE: the public image unless told otherwise (CI builds a local stand-in,
# .ci/docker.sh).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# The uid of `app`: match it to yours (APP_UID in .env) to own the files in ./data.
ARG APP_UID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    XDG_CACHE_HOME=/tmp/cache \
    MELTANO_SEND_ANONYMOUS_USAGE_STATS=false \
    MELTANO_DATABASE_URI=sqlite:////var/lib/meltano/meltano.db \
    PATH=/project/docker/bin:/project/.venv/bin:$PATH \
    DATA_DIR=data \
    ORDER_DETAILS_CSV=data/sources/order_details.csv

# /var/lib/{airflow-secrets,airflow-login,admin-secrets}: the mount points of the
# volumes that keep the generated secrets (docker/entrypoint.sh); a new volume copies
# their owner and mode (only `app`).
RUN useradd --create-home --uid "${APP_UID}" --user-group app \
 && mkdir -p /project/data /var/lib/meltano /var/lib/airflow-secrets /var/lib/airflow-login /var/lib/admin-secrets \
 && chown app:app /project /project/data /var/lib/meltano /var/lib/airflow-secrets /var/lib/airflow-login /var/lib/admin-secrets \
 && chmod 700 /var/lib/airflow-secrets /var/lib/airflow-login /var/lib/admin-secrets

WORKDIR /project
USER ${APP_UID}:${APP_UID}

# Layers from the least to the most often changed: the project venv, then the
# plugins (their definitions and in-repo code), then everything else.
COPY --chown=app:app pyproject.toml ./
COPY --chown=app:app constraints/project.txt constraints/
COPY --chown=app:app pipeline/ pipeline/
COPY --chown=app:app orchestrate/pyproject.toml orchestrate/
COPY --chown=app:app orchestrate/dag_generator/ orchestrate/dag_generator/
COPY --chown=app:app scripts/setup.sh scripts/
RUN scripts/setup.sh venv

COPY --chown=app:app meltano.yml ./
COPY --chown=app:app constraints/ constraints/
COPY --chown=app:app extract/ extract/
COPY --chown=app:app load/ load/
COPY --chown=app:app orchestrate/ orchestrate/
RUN scripts/setup.sh plugins \
 && rm -rf /tmp/cache .meltano/logs \
 && mkdir -p orchestrate/airflow/logs

COPY --chown=app:app . .

# The entrypoint drops to `app` when a service starts as root (only to fix the
# ownership of a bind-mounted ./data).
ENTRYPOINT ["docker/entrypoint.sh"]
CMD [".venv/bin/meltano", "--help"]
