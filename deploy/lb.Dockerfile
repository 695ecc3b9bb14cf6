# The load balancer of docker-compose.yml: Debian's nginx with deploy/nginx.conf.
#
# BASE_IMAGE: Docker Hub's debian:bookworm-slim by default; in CI a local stand-in built by
# .ci/docker_check.sh (the machine cannot reach Docker Hub).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/* \
    && nginx -v

COPY nginx.conf /etc/nginx/nginx.conf

# nginx runs as www-data (33), unprivileged: the port is above 1024 and every path it writes is /tmp.
USER 33:33
EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
