# syntax=docker/dockerfile:1
#
# The payment service's image. One image, one process per container; the command picks the role
# (docker-compose.yml runs each of these; `payments --help` lists them all):
#   payments api                 the HTTP API (the default command), port 8000
#   payments worker              the Temporal worker (payment and refund workflows)
#   payments consumer            the Kafka payment_initiation consumer
#   payments db upgrade          apply the database migrations, then exit
#   payments search-attributes   register the search attributes in Temporal, then exit
# Configuration comes from the environment only (payments/config.py lists every variable).
#
#   docker build -t payment-service .
#
# The target `sandbox` is another image, for development only: the service's runtime plus the
# Braintree-compatible sandbox server (devtools/sandbox), port 8090. docker-compose.yml builds it
# for its profile local-gateway:
#   docker build --target sandbox -t payment-service-sandbox .

ARG PYTHON_IMAGE=python:3.12-slim

# --- build: a virtualenv with the project and its runtime dependencies (no dev extras) -------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, in a layer of their own, so that a code change does not reinstall them:
# the pinned [project.dependencies] of pyproject.toml, read with tomllib. Every one of them has
# wheels for linux x86_64 and aarch64, so nothing is compiled.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself (a regular, non-editable install: the image needs no source tree).
# Its dependencies are already satisfied, so this only builds and installs the package; the
# wheel holds the service's packages only (pyproject.toml: devtools stays out).
COPY . .
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install . \
    && pip check

# --- runtime: the virtualenv on a clean base, run as an unprivileged user --------------------
# The base of the two images below (service and sandbox).
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --create-home \
        --shell /usr/sbin/nologin app

# Owned by root and read-only for the app user: the code cannot be changed at run time.
COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

# --- sandbox: the development gateway (docker-compose.yml, profile local-gateway) ------------
# The runtime plus the sandbox's source, owned by root (read-only for the app user). It runs
# from /app, the working directory, which `python -m` puts on the import path (`payments
# sandbox` looks for devtools in a checkout, which the image is not).
FROM runtime AS sandbox
COPY devtools/__init__.py devtools/serving.py /app/devtools/
COPY devtools/sandbox /app/devtools/sandbox
# SANDBOX_PORT
EXPOSE 8090
CMD ["python", "-m", "devtools.sandbox"]

# --- service: the production image (last, so that a plain `docker build .` makes it) -------
FROM runtime AS service
# API_PORT
EXPOSE 8000
CMD ["payments", "api"]
