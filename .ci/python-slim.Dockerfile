# A local stand-in for Docker Hub's python:3.11-slim, built by .ci/docker_check.sh.
#
# CI machines cannot reach Docker Hub, so the script debootstraps Debian bookworm, imports it as
# debian:bookworm-slim and builds this on top, tagged python:3.11-slim. The project's own
# Dockerfile then stays ordinary (FROM python:3.11-slim) and builds unchanged anywhere else.
# Debian bookworm's python3 is 3.11, the same minor version as the official image.
FROM debian:bookworm-slim

# The imported root file system already trusts this network's TLS proxy (the script copied the
# host's extra CA certificates in and ran update-ca-certificates); point pip, requests and
# OpenSSL at that bundle so `pip install` inside later builds works.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    LANG=C.UTF-8

# python3-pip/python3-venv: what the official image offers (pip, venv).
# EXTERNALLY-MANAGED is removed so a plain `pip install` works as in the official image (which
# has no such marker); python/pip are linked into /usr/local/bin where that image has them.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-pip python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED \
    && ln -sf /usr/bin/python3 /usr/local/bin/python \
    && ln -sf /usr/bin/python3 /usr/local/bin/python3 \
    && ln -sf /usr/bin/pip3 /usr/local/bin/pip \
    && ln -sf /usr/bin/pip3 /usr/local/bin/pip3

CMD ["python3"]
