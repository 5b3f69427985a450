// Chart.js (vendored, pinned in console/package-lock.json) with colours taken from the
// stylesheet, so the charts follow the light or dark scheme.

const live = new Set();

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export function palette() {
  return [1, 2, 3, 4, 5, 6].map((i) => css(`--series-${i}`));
}

export function destroyCharts() {
  for (const chart of live) chart.destroy();
  live.clear();
}

// Charts whose canvas left the page (a list drawn again in place).
export function dropDetachedCharts() {
  for (const made of live) {
    if (made.canvas && made.canvas.isConnected) continue;
    made.destroy();
    live.delete(made);
  }
}

export function chart(canvas, config) {
  const Chart = window.Chart;
  if (!Chart) throw new Error("the chart library did not load");
  const text = css("--muted");
  const grid = css("--border");
  Chart.defaults.color = text;
  Chart.defaults.borderColor = grid;
  Chart.defaults.font.family = css("--font");
  const made = new Chart(canvas, {
    ...config,
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      ...config.options,
    },
  });
  live.add(made);
  return made;
}
