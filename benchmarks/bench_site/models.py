from django.db import models


class WebhookCall(models.Model):
    """What the bare view writes: one row per request, the body's size and when it came."""

    received_at = models.DateTimeField(auto_now_add=True)
    size = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.size} bytes at {self.received_at}"
