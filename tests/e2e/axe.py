"""axe-core, the accessibility engine the browser tests audit the pages with: one pinned release from the npm
registry, checked against the integrity the registry published for it, downloaded once into the virtualenv's
cache and read from there afterwards (checked again each time)."""

import base64
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import requests
from playwright.sync_api import Page

AXE_VERSION = "4.10.3"
AXE_TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
# The registry's dist.integrity for that version (`npm view axe-core@4.10.3 dist.integrity`).
AXE_INTEGRITY = "sha512-Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg=="
CACHE = Path(sys.prefix) / "cache" / f"axe-core-{AXE_VERSION}.tgz"
# WCAG 2.1 levels A and AA, every rule axe has for them.
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def axe_source(*, cache: Path = CACHE) -> str:
    """axe.min.js of the pinned release; the tarball is fetched only when the cache lacks it or holds something else."""
    tarball = cache.read_bytes() if cache.exists() else b""
    if integrity_of(tarball) != AXE_INTEGRITY:
        response = requests.get(AXE_TARBALL, timeout=60)
        response.raise_for_status()
        tarball = response.content
        if integrity_of(tarball) != AXE_INTEGRITY:
            raise AssertionError(f"{AXE_TARBALL} does not match its published integrity {AXE_INTEGRITY}")
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".partial")
        partial.write_bytes(tarball)
        partial.replace(cache)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        return archive.extractfile("package/axe.min.js").read().decode()


def wcag_violations(page: Page, source: str) -> list[str]:
    """What axe finds against WCAG 2.1 A and AA on the page as it stands, one line per rule and element. The page's
    context must bypass its Content-Security-Policy (``bypass_csp=True``): the script goes in inline."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.add_script_tag(content=source)
    results = page.evaluate(
        "tags => axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })",
        WCAG_21_AA,
    )
    return [
        f"{violation['id']}: {node['target']} {node['failureSummary']}"
        for violation in results["violations"]
        for node in violation["nodes"]
    ]
