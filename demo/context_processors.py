"""Templates' ``demo_data_present``: base.html shows a "simulated demo readers" banner when it is true."""

from __future__ import annotations

from django.http import HttpRequest

from .services import demo_present


def demo_data(request: HttpRequest) -> dict[str, bool]:
    return {"demo_data_present": demo_present()}
