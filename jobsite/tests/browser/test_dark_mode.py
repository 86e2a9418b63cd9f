"""The site follows the system colour scheme: dark when the browser prefers dark, light when
it prefers light (Pico CSS decides; base.html pins no theme). Contrast in both schemes is
checked by axe in test_accessibility.py."""

import re

import pytest

from jobsite.tests.browser.conftest import close_checking_csp, log_in, new_context

pytestmark = pytest.mark.browser

# Pico paints the page background on <html>; <body> is transparent.
PAGE_COLOURS = """() => [
  getComputedStyle(document.documentElement).backgroundColor,
  getComputedStyle(document.body).color,
]"""


def luminance(css_colour: str) -> float:
    """WCAG relative luminance of an rgb()/rgba() colour."""
    parts = [float(part) for part in re.findall(r"[\d.]+", css_colour)]
    assert len(parts) == 3 or parts[3] == 1, f"not an opaque colour: {css_colour}"
    red, green, blue = parts[:3]

    def linear(channel: float) -> float:
        channel /= 255
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def page_colours(page) -> tuple[float, float]:
    background, text = page.evaluate(PAGE_COLOURS)
    return luminance(background), luminance(text)


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_pages_follow_the_system_colour_scheme(browser, live_app, scheme: str) -> None:
    context = new_context(browser, live_app, color_scheme=scheme)
    page = context.new_page()
    page.goto("/login/")
    seen = {"login": page_colours(page)}
    log_in(context, live_app)
    page = context.pages[-1]
    seen["jobs list"] = page_colours(page)
    page.goto("/imports/new/")
    seen["import page"] = page_colours(page)
    close_checking_csp(context)

    for where, (background, text) in seen.items():
        contrast = (max(background, text) + 0.05) / (min(background, text) + 0.05)
        assert contrast >= 4.5, f"{where}: text contrast {contrast:.1f}"
        if scheme == "dark":
            assert background < 0.05 and text > 0.4, f"{where} is not dark: {seen}"
        else:
            assert background > 0.9 and text < 0.1, f"{where} is not light: {seen}"
