"""Drive the Airflow UI in Debian's chromium with Playwright, as an operator would; print what it saw as JSON.

Run with the UI test's own interpreter (.venv-ui, `make ui-test` makes it): Playwright
is not a dependency of the project's venv. Playwright cannot download its own browser
here, so it launches /usr/bin/chromium (apt). Steps: log in, see the DAGs, open the
Trigger dialog of step 2's DAG, keep the logical date it pre-fills (now, with a time
of day), switch on "Rerun step 1 of this day", trigger, and reload the run's page
until its grid shows step 2's job finished; screenshots of each step go to OUT_DIR.

Usage: python drive_airflow_ui.py URL USER PASSWORD DAG_ID JOB OUT_DIR DAG_ID...
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FINISHED = ("Success", "Failed")


def log_in(page: Page, url: str, user: str, password: str) -> str:
    """Open the UI (which sends an anonymous visitor to the login page) and sign in; the login page's URL."""
    page.goto(url)
    page.get_by_label("Username").wait_for()
    login_url = page.url
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda u: "/auth/login" not in u)
    return login_url


def trigger_a_day(page: Page, url: str, dag_id: str, out: Path) -> tuple[str, str]:
    """Trigger ``dag_id`` from its Trigger dialog with rerun_step1 on; the pre-filled date and the new run's id."""
    page.goto(f"{url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.locator("[role=dialog][data-state=open]")
    prefilled = dialog.locator("[data-testid=datetime-input]").inner_text().strip()
    dialog.locator("label[id='switch:element_rerun_step1']").click()
    page.screenshot(path=str(out / "3-trigger-dialog.png"))
    dialog.locator("[data-testid=trigger-dag-submit]").click()
    page.wait_for_url(f"**/dags/{dag_id}/runs/**")
    run_id = page.url.rstrip("/").split("/runs/", 1)[1]
    return prefilled, run_id


def wait_for_run(page: Page, run_id: str, job: str, timeout: float) -> tuple[str, str]:
    """Reload the run's page until the job's row and the run's state badge both say finished; both texts."""
    deadline = time.monotonic() + timeout
    while True:
        page.reload()
        page.locator(f"[data-testid='grid-{run_id}-{job}']").wait_for()
        row = page.locator("tr", has=page.get_by_role("link", name=job, exact=True)).first
        row.wait_for()
        row_text = " ".join(row.inner_text().split())
        state = page.locator("[data-testid=state-badge]").first.inner_text().strip()
        if state in FINISHED and any(f" {s} " in f" {row_text} " for s in FINISHED):
            return state, row_text
        if time.monotonic() > deadline:
            return f"timeout ({state})", row_text
        time.sleep(3)


def main(url: str, user: str, password: str, dag_id: str, job: str, out_dir: str, *dag_ids: str) -> None:
    """Print {login_url, dags_seen, prefilled, run_id, run_state, job_row} as JSON."""
    out = Path(out_dir)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.set_default_timeout(60_000)
            login_url = log_in(page, url, user, password)
            page.goto(f"{url}/dags")
            for name in dag_ids:
                page.get_by_text(name, exact=True).first.wait_for()
            dags_seen = [name for name in dag_ids if page.get_by_text(name, exact=True).count()]
            page.screenshot(path=str(out / "2-dags.png"))
            prefilled, run_id = trigger_a_day(page, url, dag_id, out)
            state, row = wait_for_run(page, run_id, job, timeout=300)
            page.screenshot(path=str(out / "4-step-2-grid.png"))
        finally:
            browser.close()
    result = {
        "login_url": login_url,
        "dags_seen": dags_seen,
        "prefilled": prefilled,
        "run_id": run_id,
        "run_state": state,
        "job_row": row,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
