# cliproxy as a container: docs/scaling.md ("A container image") says how to run it.
#
#   docker build -t cliproxy .
#   docker run -d -p 8317:8317 -v ./config:/config -v cliproxy-data:/data cliproxy
#
# /config holds config.yaml (mounted writable if the management API or the secret-key
# hashing at first start may rewrite it); /data holds the accounts (auth-dir), the usage
# database and the logs, and is the home directory, so the default auth-dir
# (~/.cli-proxy-api) lands in it too. The container listens on every interface, which
# cliproxy allows only with api-keys in the config.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Optional extras, for instance --build-arg EXTRAS="[otel]".
ARG EXTRAS=""
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".${EXTRAS}"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/data \
    WRITABLE_PATH=/data \
    CLIPROXY_CONFIG=/config/config.yaml
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin cliproxy \
    && mkdir -p /data /config \
    && chown cliproxy:cliproxy /data /config
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
USER cliproxy
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8317
# /healthz answers without a client key; the image has no curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8317/healthz', timeout=4)"]
ENTRYPOINT ["cliproxy"]
CMD ["serve", "--config", "/config/config.yaml", "--host", "0.0.0.0"]
