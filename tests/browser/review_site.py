"""The review site in real headless Chromium (Selenium + Debian's chromium-driver).

Run by tests/it/site_browser.rs against a running `tagwall serve` whose two rulesets
(entra-connector, storage) are withheld between two real weeks:

    python3 review_site.py URL APPROVE_TOKEN READ_TOKEN SERVED_FILE SHOTS_DIR

A read token logs in and finds no approve form; a forged form is refused; an approve token logs
in, approves `storage` with a comment and sees the approval in the ruleset's history and the
served list equal to SERVED_FILE; at 400 px no page scrolls sideways. Every page is
photographed at 1400 and 400 px into SHOTS_DIR. Exits non-zero with the reason on a failure.
"""

import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

URL, APPROVE, READ, SERVED, SHOTS = sys.argv[1:6]

PAGES = [
    ("home", "/"),
    ("ruleset", "/rulesets/storage/"),
    ("pending", "/pending/entra-connector"),
    ("reports", "/reports/"),
    ("reports-cloud", "/reports/Public/"),
    ("report", "/reports/Public/2025-07-28"),
    ("lookup", "/lookup?q=20.153.90.1"),
]


def driver():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def lands(d, end, what):
    """Waits (30 s at most) for the page after a click to end with `end`."""
    try:
        WebDriverWait(d, 30).until(lambda d: d.current_url.split("?")[0].endswith(end))
    except Exception:
        raise AssertionError(f"{what} lands on {d.current_url}, not on {end}")


def check(ok, why):
    if not ok:
        raise AssertionError(why)


def login(d, token):
    d.get(URL + "/login")
    d.find_element(By.ID, "token").send_keys(token)
    d.find_element(By.ID, "login").click()
    lands(d, URL[len("http://"):] + "/", "login with a token")


def logout(d):
    d.find_element(By.CSS_SELECTOR, "nav form button").click()
    lands(d, "/login", "logout")


def no_sideways_scroll(d, name):
    width, inner = d.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    check(width <= inner, f"{name} scrolls sideways at {inner} px: {width} px wide")


def shoot(d, name, width):
    d.set_window_size(width, 1000)
    d.save_screenshot(os.path.join(SHOTS, f"{name}-{width}.png"))


def photograph_all(d, suffix=""):
    for name, path in PAGES + [("login", "/login")]:
        d.get(URL + path)
        check("Not found" not in d.title, f"{path} is not found")
        for width in (1400, 400):
            shoot(d, name + suffix, width)
        no_sideways_scroll(d, path)
        d.set_window_size(1400, 1000)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    d = driver()
    try:
        d.set_window_size(1400, 1000)
        # A read token: pages, no forms; a forged form is refused.
        login(d, READ)
        body = d.find_element(By.TAG_NAME, "body").text
        check("2 changes wait for review" in body, "the home page says what waits: " + body[:400])
        d.get(URL + "/pending/storage")
        check(not d.find_elements(By.ID, "approve"), "a read token is offered the approve form")
        check("Withheld by the guard" in d.page_source, "the pending page opens with the guard's reason")
        d.execute_script(
            "var f=document.createElement('form');f.method='post';"
            "f.action='/pending/storage/approve';"
            "for (const [k,v] of [['csrf','0'.repeat(64)],['comment','forged']]) {"
            "var i=document.createElement('input');i.name=k;i.value=v;f.appendChild(i);}"
            "document.body.appendChild(f);f.submit();"
        )
        lands(d, "/pending/storage/approve", "the forged form")
        check("refused" in d.find_element(By.TAG_NAME, "body").text, "a forged form is refused")
        d.get(URL + "/")
        logout(d)

        # An approve token: pages photographed, then storage approved with a comment.
        login(d, APPROVE)
        photograph_all(d)
        d.get(URL + "/pending/storage")
        d.find_element(By.ID, "comment-approve").send_keys("checked with the network team")
        d.find_element(By.ID, "approve").click()
        lands(d, "/rulesets/storage/", "approving")
        history = d.find_element(By.TAG_NAME, "body").text
        check("checked with the network team" in history and "alice" in history,
              "the approval is in the ruleset's history: " + history[-800:])
        shoot(d, "ruleset-approved", 1400)
        shoot(d, "ruleset-approved", 400)
        request = urllib.request.Request(URL + "/rulesets/storage/storage.txt",
                                         headers={"Authorization": "Bearer " + READ})
        served = urllib.request.urlopen(request).read()
        with open(SERVED, "rb") as f:
            check(served == f.read(), "the served list is the approved file")
    finally:
        d.quit()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"review_site.py: {e}", file=sys.stderr)
        sys.exit(1)
