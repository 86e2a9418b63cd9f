"""The browser suite fails on any Content-Security-Policy violation (see conftest): this shows
the check itself sees one, so a clean run of the other tests means the pages keep the policy."""

import pytest

from jobsite.tests.browser.conftest import close_checking_csp, new_context


def test_an_inline_handler_is_blocked_and_fails_the_check(browser, live_app) -> None:
    context = new_context(browser, live_app)
    page = context.new_page()
    page.goto("/login/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=\"1\">')")
    page.wait_for_function("document.querySelector('img[onerror]') !== null")
    page.wait_for_timeout(300)  # let the violation event reach the test
    with pytest.raises(AssertionError, match="script-src"):
        close_checking_csp(context)
