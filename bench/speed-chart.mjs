// The chart of bench/models.mjs (BENCHMARKS.md shows it): per workload and thread count, one bar
// per setting, its speed relative to the fastest peer setting on that workload and thread count
// (the peer's page-time median over the setting's; the fastest peer is 1.0, longer is faster), from
// the run's `rows` alone. A standalone SVG with no script, font or link: it renders wherever
// Markdown shows images.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** `name(engine, variant)`: a setting's label; `isAnybit(engine)`. Returns the SVG text. */
export function speedChart(result, name, isAnybit) {
  const panels = [];
  for (const workload of result.args.workloads) {
    for (const threads of result.args.threads) {
      const rows = result.rows.filter((x) => x.workload === workload && x.threads === threads);
      const best = Math.min(...rows.filter((x) => !isAnybit(x.engine)).map((x) => x.median_ms));
      if (!rows.length || !Number.isFinite(best)) continue;
      const bars = rows.map((x) => ({ label: name(x.engine, x.variant), ms: x.median_ms, speed: best / x.median_ms, ours: isAnybit(x.engine) }));
      panels.push({ title: `${workload}, ${threads} thread${threads > 1 ? 's' : ''}`, bars });
    }
  }
  const top = Math.max(1, ...panels.flatMap((p) => p.bars.map((b) => b.speed)));
  const scale = Math.ceil(top * 2) / 2;
  const [W, left, right, barH, gap, head] = [760, 210, 110, 14, 4, 22];
  const plot = W - left - right;
  const x = (v) => left + (v / scale) * plot;
  let y = 34;
  const out = [];
  for (const p of panels) {
    out.push(`<text x="8" y="${y + 14}" class="t">${esc(p.title)}</text>`);
    y += head;
    for (const b of p.bars) {
      out.push(`<text x="${left - 6}" y="${y + barH - 3}" class="l">${esc(b.label)}</text>`);
      out.push(`<rect x="${left}" y="${y}" width="${(x(b.speed) - left).toFixed(1)}" height="${barH}" class="${b.ours ? 'a' : 'p'}"/>`);
      out.push(`<text x="${(x(b.speed) + 4).toFixed(1)}" y="${y + barH - 3}" class="v">${b.speed.toFixed(2)}x (${b.ms.toFixed(3)} ms)</text>`);
      y += barH + gap;
    }
    y += 8;
  }
  const grid = [];
  for (let v = 0; v <= scale + 1e-9; v += 0.5) {
    grid.push(`<line x1="${x(v).toFixed(1)}" y1="28" x2="${x(v).toFixed(1)}" y2="${y}" class="${v === 1 ? 'one' : 'g'}"/>`);
    grid.push(`<text x="${x(v).toFixed(1)}" y="22" class="s">${v}x</text>`);
  }
  const when = `${result.date?.slice(0, 16).replace('T', ' ')} UTC, commit ${result.source?.commit?.slice(0, 7) ?? '?'}, load ${result.load?.start ?? '?'}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 24}" viewBox="0 0 ${W} ${y + 24}" font-family="sans-serif">
<style>.t{font-size:13px;font-weight:bold}.l{font-size:11px;text-anchor:end}.v,.s{font-size:10px}.s{text-anchor:middle;fill:#555}.a{fill:#2f6db5}.p{fill:#9a9a9a}.g{stroke:#e2e2e2}.one{stroke:#c0392b;stroke-dasharray:4 3}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="8" y="14" class="s" style="text-anchor:start">Speed relative to the fastest peer setting (page-time medians); blue: anybit, grey: ORT Web and TF.js</text>
${grid.join('\n')}
${out.join('\n')}
<text x="8" y="${y + 14}" class="s" style="text-anchor:start">bench/models.mjs, ${esc(when)}: one page per thread count, settings in round-robin; longer is faster</text>
</svg>
`;
}
