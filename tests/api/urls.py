"""The site's URLs with the API mounted at ``/api/`` (unless ``webapp/urls.py`` already mounts it)."""

from django.urls import include, path

from webapp.urls import urlpatterns as site_urlpatterns

_mounted = any(str(getattr(p, "pattern", "")) == "api/" for p in site_urlpatterns)

urlpatterns = [*site_urlpatterns]
if not _mounted:
    urlpatterns.append(path("api/", include("webapp.api.urls")))
