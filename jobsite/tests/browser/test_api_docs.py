"""The API's interactive docs at /api/v1/docs run from the app's own static files under the
site's Content-Security-Policy (the `context` fixture fails on any violation)."""


def test_the_docs_page_lists_every_operation_without_a_csp_violation(page, screenshot) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto("/api/v1/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() >= 14
    assert page.get_by_text("/api/v1/jobs/bulk-status").count() >= 1
    screenshot(page, "api-docs")
    base = page.url.split("/api/")[0]
    assert all(url.startswith((base, "data:")) for url in requests), requests
