import pytest

pytestmark = pytest.mark.browser


def test_login_page_and_demo_login_reaches_admin(context, live_app, screenshot) -> None:
    page = context.new_page()
    page.goto("/jobs/")
    assert "/login/" in page.url  # anonymous is sent to log in
    screenshot(page, "01-login")
    page.get_by_label("Username").fill(live_app.username)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").is_visible()
    page.get_by_label("Password").fill(live_app.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/jobs/")
    page.get_by_role("link", name="Admin").click()
    page.wait_for_url("**/admin/")
    assert page.get_by_role("heading", name="Site administration").is_visible()
    screenshot(page, "02-admin")


def test_expired_session_during_htmx_request_goes_to_login_and_back(page, live_app) -> None:
    page.goto("/jobs/?q=Bracket")
    page.context.clear_cookies()  # the session ends while the page is open
    page.locator("#job-filters").get_by_role("button", name="Filter", exact=True).click()
    page.wait_for_url("**/login/?next=*")
    assert page.locator("#job-filters").count() == 0  # a whole login page, not a fragment
    page.get_by_label("Username").fill(live_app.username)
    page.get_by_label("Password").fill(live_app.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/jobs/?q=Bracket")
