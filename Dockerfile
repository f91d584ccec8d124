# One image for every process of the app: web (gunicorn), ws (Daphne), Celery worker and beat, release
# (migrations + collectstatic). The commands are the scripts in bin/, the same ones the tests run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_READ_DOT_ENV_FILE=0

WORKDIR /app

# Requirements first, so a code change does not reinstall them (psycopg[binary] needs no libpq).
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files hashed and compressed at build time (CompressedManifestStaticFilesStorage), so the image
# serves them on its own; config/bin/release collects them again into the volume nginx reads. The values below
# exist only for this one command (production settings refuse to load without them); none is kept.
RUN DJANGO_SECRET_KEY=collectstatic-only-build-time-key-never-used-to-sign-anything-0123 \
    FRONTEND_URL=https://build.invalid META_APP_SECRET=build META_VERIFY_TOKEN=build \
    DATABASE_URL=postgres://build@127.0.0.1:1/build REDIS_URL=redis://127.0.0.1:1/0 \
    python manage.py collectstatic --noinput

RUN useradd --system --create-home --home-dir /home/app app \
    && mkdir -p /app/media \
    && chown -R app /app/media /app/staticfiles
USER app

EXPOSE 8000 8001
CMD ["config/bin/web"]
