from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import WebhookCall


@csrf_exempt
@require_POST
def bare(request: HttpRequest) -> HttpResponse:
    """The baseline: read the body, insert one row, answer 204 — what any webhook view does at least."""
    WebhookCall.objects.create(size=len(request.body))
    return HttpResponse(status=204)
