"""/favicon.ico on the live server: the redirect ends at the icon, which the pages link."""

import pytest

pytestmark = pytest.mark.browser


def test_favicon_ico_ends_at_the_svg_icon(context) -> None:
    response = context.request.get("/favicon.ico")

    assert response.status == 200
    assert response.url.endswith("/favicon.svg")
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text().startswith("<svg ")


def test_the_login_page_links_the_icon_that_is_served(context) -> None:
    page = context.new_page()
    page.goto("/login/")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert context.request.get(href).status == 200
