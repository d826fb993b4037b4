# Xueliang in one container: portal, console, API, video relay and MQTT bridge.
# Production pairs it with Mosquitto and PostgreSQL (see compose.yaml).
FROM python:3.11-slim

# The system ffmpeg (Debian's) rather than the bundled one: it has RTSP and TLS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --home-dir /srv/xueliang --create-home xueliang \
    && mkdir /data && chown xueliang /data

WORKDIR /srv/xueliang/app
COPY pyproject.toml README.md ./
COPY xueliang ./xueliang
COPY stb_portal ./stb_portal
COPY video_relay ./video_relay
COPY mqtt_bridge ./mqtt_bridge
COPY templates ./templates
RUN pip install --no-cache-dir .

USER xueliang
ENV XL_DATA_DIR=/data \
    XL_HTTP_HOST=0.0.0.0 \
    XL_HTTP_PORT=8080
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('XL_HTTP_PORT', '8080') + '/healthz', timeout=4)"

CMD ["xueliang", "run"]
