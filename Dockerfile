# Chatbot service image: the `chatbot` CLI (data, train, eval, index, serve) on Python 3.11.
#
# CPU (default):
#   docker build -t chatbot:local .
# GPU variant, on a TensorFlow GPU base that already carries CUDA and TensorFlow:
#   docker build -t chatbot:gpu \
#     --build-arg BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu --build-arg EXTRAS=gpu .
#   docker run --gpus all ...
# (The GPU base must run Python 3.11: pyproject.toml requires >=3.11,<3.12.)
#
# No `# syntax=` line and no RUN heredocs: CI builds with Debian's Docker 20.10, which cannot
# fetch a frontend from Docker Hub. In CI, python:3.11-slim is a local stand-in built by
# .ci/docker_check.sh; everywhere else it is Docker Hub's.
#
# Run it with the trained artifacts mounted at /artifacts (see docker-compose.yml):
#   docker run -p 127.0.0.1:8000:8000 -v chatbot_artifacts:/artifacts chatbot:local

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# EXTRAS: pyproject extras to install, comma-separated ("gpu" for the GPU variant).
ARG EXTRAS=""

# NUMBA_CACHE_DIR: the lexical search's compiled loop is cached where the unprivileged user can
# write (the installed package folder is not).
# PIP_BREAK_SYSTEM_PACKAGES: GPU bases whose system Python is marked externally managed still
# take a plain `pip install` (harmless on python:3.11-slim).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    TF_CPP_MIN_LOG_LEVEL=3 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    CHATBOT_DATABASE_URL=sqlite:////artifacts/feedback.sqlite3

# WordNet 3.0 data for the UDC text normaliser, read from /usr/share/wordnet.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wordnet-base \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, in a layer of their own, so that editing code does not reinstall
# TensorFlow: install the project from its pyproject with empty packages, then drop it.
# Versions are pinned by pyproject.toml, hence no pins here (DL3013).
# README* (not README.md): pyproject names README.md, but a missing one must not break the build.
COPY pyproject.toml README* ./
# hadolint ignore=DL3013
RUN mkdir -p chatbot training service/static chatbot_cli \
    && touch chatbot/__init__.py training/__init__.py service/__init__.py chatbot_cli/__init__.py \
    && pip install ".${EXTRAS:+[$EXTRAS]}" \
    && pip uninstall -y chatbot \
    && rm -rf build ./*.egg-info chatbot training service chatbot_cli

# The code itself; --no-deps: everything it needs is already installed above.
COPY chatbot ./chatbot
COPY training ./training
COPY service ./service
COPY chatbot_cli ./chatbot_cli
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && chatbot --help >/dev/null

# The GPU extra installs tensorflow[and-cuda] beside the base dependency tensorflow-cpu, and
# both wheels own the `tensorflow` package folder: keep the GPU build's files.
RUN case ",${EXTRAS}," in *,gpu,*) \
        pip uninstall -y tensorflow-cpu && pip install --no-deps --force-reinstall "tensorflow==2.21.*" ;; \
    esac

# Run as an unprivileged user. /artifacts is created here, owned by that user, so a named
# volume mounted there starts out writable by the one-off jobs (data, train, eval, index).
# A numeric USER so that runtimes enforcing non-root (runAsNonRoot) can check it.
RUN groupadd --system --gid 10001 chatbot \
    && useradd --system --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin chatbot \
    && mkdir -p /artifacts \
    && chown chatbot:chatbot /artifacts
USER 10001:10001
WORKDIR /home/chatbot

EXPOSE 8000

# python, not curl: the slim image has no curl. Liveness only (/healthz answers before the
# model has loaded); readiness is /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["chatbot", "serve", "--model", "/artifacts/model", "--index", "/artifacts/index", "--host", "0.0.0.0", "--port", "8000"]
