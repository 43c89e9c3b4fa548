"""The marker of a seeded demo: one row, written in the seeding's transaction (so a second run sees it)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

DEMO_READERS_GROUP = "Demo readers"  # every simulated reader is in it (and has an unusable password)


class DemoRun(models.Model):
    key = models.CharField(max_length=20, unique=True, default="demo", help_text="One demo per database.")
    seed = models.BigIntegerField()
    seeded_at = models.DateTimeField(default=timezone.now)
    summary = models.JSONField(default=dict, blank=True, help_text="What the seeding wrote (counts).")

    def __str__(self) -> str:
        return f"demo seed {self.seed} at {self.seeded_at:%Y-%m-%d %H:%M}"
