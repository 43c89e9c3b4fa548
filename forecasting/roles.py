"""The product's roles as Django groups with permissions, kept in sync after every migrate."""

from __future__ import annotations

EDITORS = "Editors"
ANALYSTS = "Analysts"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    EDITORS: [
        "forecasting.view_article",
        "forecasting.add_article",
        "forecasting.change_article",
        "forecasting.view_question",
        "forecasting.add_question",
        "forecasting.change_question",
        "forecasting.open_question",
        "forecasting.close_question",
        "forecasting.resolve_question",
        "forecasting.annul_question",
        "forecasting.view_questionevent",
        "forecasting.view_resolution",
        "forecasting.view_modelrun",
        "forecasting.add_modelrun",
    ],
    ANALYSTS: [
        "forecasting.view_article",
        "forecasting.view_question",
        "forecasting.view_resolution",
        "forecasting.view_score",
        "forecasting.view_modelrun",
    ],
}


def ensure_role_groups(**_kwargs) -> None:
    """Create the role groups and give them exactly their permissions (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    for group_name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                wanted.append(permission)
        group.permissions.set(wanted)
