// A two-panel horizontal bar chart (req/s and p99 per target) as SVG, converted to PNG with a Debian tool
// (rsvg-convert from librsvg2-bin, or ImageMagick's convert) when one is installed.
import { execFileSync } from 'node:child_process';

export interface Bar {
  label: string;
  rps: number;
  p99ms: number;
  /** colour group */
  kind: string;
}

const COLORS: Record<string, string> = {
  direct: '#9e9e9e',
  nginx: '#2e7d32',
  'http-proxy': '#ef6c00',
  fastify: '#6a1b9a',
  switchyard: '#1565c0',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function barChartSvg(title: string, subtitle: string, bars: readonly Bar[]): string {
  const labelW = 190;
  const panelW = 330;
  const gap = 70;
  const rowH = 26;
  const top = 78;
  const width = labelW + panelW * 2 + gap + 40;
  const height = top + bars.length * rowH + 50;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="12" y="22" font-size="16" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="12" y="40" fill="#555">${esc(subtitle)}</text>`);
  const panels: { name: string; value: (b: Bar) => number; fmt: (v: number) => string; x0: number }[] = [
    { name: 'requests/s (median; higher is better)', value: (b) => b.rps, fmt: (v) => (v >= 10000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0)), x0: labelW },
    { name: 'p99 latency ms (median; lower is better)', value: (b) => b.p99ms, fmt: (v) => v.toFixed(v < 10 ? 2 : 1), x0: labelW + panelW + gap },
  ];
  for (const p of panels) {
    const max = niceMax(Math.max(...bars.map((b) => (Number.isFinite(p.value(b)) ? p.value(b) : 0))));
    out.push(`<text x="${p.x0}" y="${top - 16}" font-weight="bold">${esc(p.name)}</text>`);
    for (let t = 0; t <= 4; t++) {
      const x = p.x0 + (panelW * t) / 4;
      out.push(`<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${top + bars.length * rowH}" stroke="#e0e0e0"/>`);
      out.push(`<text x="${x}" y="${top + bars.length * rowH + 16}" text-anchor="middle" fill="#555" font-size="11">${esc(p.fmt((max * t) / 4))}</text>`);
    }
    bars.forEach((b, i) => {
      const v = p.value(b);
      const y = top + i * rowH;
      const w = Number.isFinite(v) ? Math.max(1, (panelW * v) / max) : 0;
      out.push(`<rect x="${p.x0}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${COLORS[b.kind] ?? '#607d8b'}"/>`);
      out.push(`<text x="${p.x0 + w + 4}" y="${y + rowH / 2 + 4}" font-size="11">${Number.isFinite(v) ? esc(p.fmt(v)) : 'n/a'}</text>`);
    });
  }
  bars.forEach((b, i) => {
    out.push(`<text x="${labelW - 8}" y="${top + i * rowH + rowH / 2 + 4}" text-anchor="end">${esc(b.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Converts an SVG file to PNG; returns the tool used, or null with the reason when none is installed. */
export function svgToPng(svgPath: string, pngPath: string): { tool: string | null; note: string } {
  const tryRun = (cmd: string, args: string[]): boolean => {
    try {
      execFileSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
      return true;
    } catch {
      return false;
    }
  };
  if (tryRun('rsvg-convert', ['-z', '2', '-b', 'white', '-o', pngPath, svgPath])) return { tool: 'rsvg-convert', note: '' };
  // /usr/local/bin/convert on these machines may be a stand-in that only turns PNG into PPM: require real ImageMagick.
  let isImageMagick = false;
  try {
    isImageMagick = /ImageMagick/.test(execFileSync('convert', ['-version'], { encoding: 'utf8', timeout: 10_000 }));
  } catch {
    isImageMagick = false;
  }
  if (isImageMagick && tryRun('convert', ['-density', '192', '-background', 'white', svgPath, pngPath])) return { tool: 'ImageMagick convert', note: '' };
  return { tool: null, note: 'no SVG converter found: `apt-get install -y librsvg2-bin` (rsvg-convert) or `imagemagick`, then rerun' };
}
