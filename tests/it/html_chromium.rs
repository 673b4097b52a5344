//! The HTML reports as people see them, in real headless Chromium: a weekly diff of two real
//! weeks printed to PDF holds every prefix of every tag (collapsed on screen, expanded in print)
//! and the page's facts (sources, sha256, generation time, version); a screenshot at a wide
//! window is the full width of the window; the history page's chart labels its time axis.
//! `TAGWALL_TEST_CHROMIUM=1` (set by `.ci/run`) makes a missing Chromium a failure.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{shared_data, stdout, tagwall};

fn chromium() -> Option<&'static str> {
    let found = Command::new("chromium").arg("--version").output().is_ok()
        && Command::new("pdftotext").arg("-v").output().is_ok();
    if found {
        return Some("chromium");
    }
    common::skip::skip(common::skip::Needs {
        what: "chromium or pdftotext is missing",
        required_by: "TAGWALL_TEST_CHROMIUM",
        how: "apt-get install chromium poppler-utils",
    });
    None
}

/// Runs headless Chromium on a local file with `args`.
fn headless(browser: &str, page: &Path, args: &[&str]) {
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "chromium {args:?} failed");
}

/// The text of `page` printed to PDF by Chromium.
fn printed(browser: &str, page: &Path) -> String {
    let pdf = page.with_extension("pdf");
    headless(
        browser,
        page,
        &[
            "--no-pdf-header-footer",
            &format!("--print-to-pdf={}", pdf.display()),
        ],
    );
    pdf_text(&pdf)
}

fn pdf_text(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Width and height of a PNG file, from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[1..4], b"PNG");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

#[test]
fn reports_print_everything_and_use_the_whole_width() {
    let Some(browser) = chromium() else { return };
    let Some(shared) = shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    for w in ["20250721", "20250728"] {
        let file = shared.join(format!("Public/ServiceTags_Public_{w}.json.gz"));
        tagwall(dir.path())
            .args(["import", file.to_str().unwrap()])
            .assert()
            .success();
    }
    let html =
        stdout(tagwall(dir.path()).args(["diff", "2025-07-21", "2025-07-28", "--format", "html"]));
    let page = dir.path().join("diff.html");
    std::fs::write(&page, &html).unwrap();

    // Printed, every tag's prefixes are there, though each tag is collapsed on screen.
    let text = printed(browser, &page);
    let lines: Vec<&str> = html
        .lines()
        .filter_map(|l| {
            l.strip_prefix("<span class=\"plus\">")
                .or_else(|| l.strip_prefix("<span class=\"minus\">"))
        })
        .map(|l| l.trim_end_matches("</span>"))
        .collect();
    assert!(lines.len() > 250, "{} prefix lines", lines.len());
    assert!(
        html.contains("<details><summary><code>"),
        "tags are collapsed"
    );
    for l in &lines {
        assert!(text.contains(l), "{l} is missing from the printed page");
    }
    for fact in [
        "ServiceTags_Public_20250728.json.gz",
        "04773b278fb93870ff3c8e8408f271925feba729c60ffce5df43f3afe7f90bbc",
        "Generated at",
        concat!("tagwall ", env!("CARGO_PKG_VERSION")),
        "13 more regions",
    ] {
        assert!(
            text.contains(fact),
            "{fact} is missing from the printed page"
        );
    }
    assert!(!text.contains("Expand all"), "the buttons are not printed");
    // No 20-digit address counts anywhere.
    assert!(
        !text
            .split(|c: char| !c.is_ascii_digit())
            .any(|run| run.len() > 16),
        "a long integer in the page"
    );

    // On screen the page takes the window's width: the sha256 line does not wrap at 1400 px,
    // and the screenshot is the window.
    let png = dir.path().join("diff.png");
    headless(
        browser,
        &page,
        &[
            "--window-size=1400,900",
            &format!("--screenshot={}", png.display()),
        ],
    );
    assert_eq!(png_size(&png), (1400, 900));
    assert!(!html.contains("max-width:60em"));

    // The history chart has a time axis with year ticks.
    let history =
        stdout(tagwall(dir.path()).args(["history", "AzureActiveDirectory", "--format", "html"]));
    assert!(
        history.contains(">2025-07-21</text>") && history.contains(">2025-07-28</text>"),
        "a history within one month labels its ends"
    );
    let page = dir.path().join("history.html");
    std::fs::write(&page, &history).unwrap();
    let text = printed(browser, &page);
    assert!(
        text.contains("2025-07-28") && text.contains("IPv4 prefixes"),
        "{text}"
    );
}
