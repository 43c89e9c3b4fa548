"""``tests.api.urls`` plus stand-ins for the site's download pages, to test the API's links to them."""

from django.http import HttpResponse
from django.urls import path

from tests.api.urls import urlpatterns as api_urlpatterns


def _stand_in(request, **kwargs):
    return HttpResponse("a download")


urlpatterns = [
    path("downloads/articles/<slug:slug>/", _stand_in, name="download_article"),
    path("downloads/questions/<int:pk>/", _stand_in, name="download_question"),
    *api_urlpatterns,
]
