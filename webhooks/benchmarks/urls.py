"""The app's URL map plus ``POST /bench/noop``, mounted only in the servers the bench starts
(``webhooks.benchmarks.settings`` selects this module): the do-nothing Django view the webhook is compared with."""
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as app_urlpatterns


@csrf_exempt
def noop_view(request):
    _ = request.body  # read the body, as the webhook does, and nothing else
    return HttpResponse(b'{"status":"ok"}', content_type="application/json")


urlpatterns = [path("bench/noop", noop_view), *app_urlpatterns]
