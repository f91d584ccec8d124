# One image for every process of the app: web (Daphne), Celery worker, Celery beat, migrations.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Requirements first, so a code change does not reinstall them (psycopg[binary] needs no libpq).
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

RUN useradd --system --create-home --home-dir /home/app app \
    && mkdir -p /app/media \
    && chown app /app/media
USER app

EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "config.asgi:application"]
