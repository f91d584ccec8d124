"""The raw body becomes the only copy of a delivery: the JSONB ``payload`` column goes.

Between this migration (``config/bin/release``) and the restart of the web processes, a web process of
the previous release fails to insert and answers 503; Meta retries the delivery, so none is lost.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0003_pending_queue_index")]

    operations = [migrations.RemoveField(model_name="webhookevent", name="payload")]
