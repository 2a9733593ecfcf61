# Flask-Realtime: the web tier (gunicorn) and the RQ workers share this image.
#   docker build -t flask-realtime .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    FLASK_REALTIME_INSTANCE_PATH=/app/instance

RUN groupadd --system app && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
# Pinned: constraints.txt holds the versions the test suite ran with.
RUN pip install -c constraints.txt ".[prod]" && mkdir -p /app/instance && chown app:app /app/instance

USER app
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=4).status != 200)"
# One gunicorn worker per container (Flask-SocketIO threading mode); scale with replicas.
CMD ["gunicorn", "-c", "python:flask_realtime.web.gunicorn_conf", "-k", "gthread", "-w", "1", \
     "--threads", "100", "-b", "0.0.0.0:5000", "flask_realtime.web.wsgi:app"]
