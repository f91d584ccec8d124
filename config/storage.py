"""Static files storage for production: WhiteNoise's compressed, content-hashed files, with the ES module
imports of static/js rewritten to the hashed names too (Django leaves them alone by default), so a deploy
never serves a new app.js importing a stale cached module."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
