"""The app's URL map plus ``POST /bench/noop``, mounted only in the servers the bench starts
(``bench.settings`` selects this module): the do-nothing Django view the webhook is compared with; and
``POST /bench/callgrind-dump``, which marks the instructions phase's counted window in a gunicorn worker."""

import os

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as app_urlpatterns


@csrf_exempt
def noop_view(request):
    _ = request.body  # read the body, as the webhook does, and nothing else
    return HttpResponse(b'{"status":"ok"}', content_type="application/json")


@csrf_exempt
def callgrind_dump_view(request):
    # The served instruction counts run this worker under callgrind with --dump-before=sched_yield, and nothing
    # else in it calls sched_yield: each request here is a dump. (callgrind_control cannot reach a forked worker.)
    os.sched_yield()
    return HttpResponse(status=204)


urlpatterns = [path("bench/noop", noop_view), path("bench/callgrind-dump", callgrind_dump_view), *app_urlpatterns]
