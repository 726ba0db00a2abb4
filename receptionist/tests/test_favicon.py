"""Every page links the icon: without one the browser asks for /favicon.ico, gets a 404 and logs an error."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/accounts/login/"])
def test_pages_link_an_icon_that_static_files_serve_and_the_policy_allows(client, path):
    response = client.get(path)
    [href] = re.findall(r'<link rel="icon" href="([^"]+)"', response.content.decode())
    assert href.startswith(settings.STATIC_URL)
    assert finders.find(href.removeprefix(settings.STATIC_URL)) is not None
    assert "img-src 'self'" in response["Content-Security-Policy"]
