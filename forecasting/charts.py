"""Small server-rendered charts (inline SVG), so pages need no chart library."""

from __future__ import annotations

import datetime as dt


def step_chart(points: list[tuple[float, float]], width: int = 560, height: int = 140) -> dict | None:
    """SVG polyline of a probability over time, as steps: each value stands until the next."""
    if len(points) < 2:
        return None
    start, end = points[0][0], points[-1][0]
    span = max(end - start, 1.0)
    coordinates = []
    previous = None
    for t, value in points:
        x = round((t - start) / span * width, 1)
        if previous is not None:
            coordinates.append(f"{x},{round((1 - previous) * height, 1)}")
        coordinates.append(f"{x},{round((1 - value) * height, 1)}")
        previous = value
    return {
        "points": " ".join(coordinates),
        "width": width,
        "height": height,
        "first": dt.datetime.fromtimestamp(start, tz=dt.UTC),
        "last": dt.datetime.fromtimestamp(end, tz=dt.UTC),
    }
