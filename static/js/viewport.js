// The page's height is what the reader can see. Browsers that honour the viewport's interactive-widget shrink the
// whole page for an on-screen keyboard (100dvh follows); others (iOS Safari) shrink only the visual viewport, so
// its height is kept in --app-height and the composer stays above the keyboard. Not while zoomed in: a pinch
// changes the visual viewport too, and the page must keep its size under the zoom.
export function fitToVisibleViewport(root = document.documentElement) {
  const viewport = window.visualViewport;
  if (!viewport) return;
  const fit = () => {
    if (Math.abs(viewport.scale - 1) > 0.01) return;
    root.style.setProperty("--app-height", `${Math.round(viewport.height)}px`);
  };
  viewport.addEventListener("resize", fit);
  fit();
}
