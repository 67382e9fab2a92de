# The hotline service image. Asterisk runs elsewhere (its configuration is asterisk-config/);
# point the service at it with HOTLINE_AMI_HOST / HOTLINE_AMI_SECRET_FILE, and at PostgreSQL with
# DATABASE_URL. Secrets are mounted at run time, never baked in.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY acd ./acd
COPY agents ./agents
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /srv/hotline hotline \
    && mkdir -p /srv/hotline && chown hotline /srv/hotline
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER hotline
WORKDIR /srv/hotline
ENV HOTLINE_STATE_DIR=/srv/hotline \
    DATABASE_URL=sqlite:////srv/hotline/hotline.sqlite3
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["hotline", "run", "--host", "0.0.0.0", "--port", "8000"]
