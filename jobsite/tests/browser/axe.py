"""axe-core accessibility checks for browser tests.

axe-core (assets/axe-core, from the npm registry, MPL-2.0) is a test asset, never served by
the app. It is injected as a script tag, which the site's Content-Security-Policy would
refuse: pages checked with axe come from a context opened with `bypass_csp=True`
(`axe_context`). The CSP itself is checked by the other browser tests.
"""

from pathlib import Path

AXE_SCRIPT = Path(__file__).resolve().parent / "assets" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")

RUN_AXE = """async () => {
  await Promise.all(document.getAnimations().map(animation => animation.finished));
  const results = await window.axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map(violation => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    nodes: violation.nodes.map(node => ({
      target: node.target.join(" "),
      summary: node.failureSummary,
    })),
  }));
}"""


def axe_context(browser, live_app, **options):
    """A browser context on the live app in which axe can be injected (CSP bypassed)."""
    options.setdefault("viewport", {"width": 1400, "height": 900})
    context = browser.new_context(base_url=live_app.url, bypass_csp=True, **options)
    context.set_default_timeout(15_000)
    return context


def axe_violations(page) -> list[dict]:
    """Every violation axe finds on the page as it is now, of any impact."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    return page.evaluate(RUN_AXE)


def describe(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']})")
        for node in violation["nodes"]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


def assert_no_serious_violations(page, where: str) -> None:
    """Fail, listing each, on any serious or critical axe violation on the page."""
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe: serious or critical violations on {where}:\n{describe(blocking)}"
