/**
 * The paging benchmark's plot: decode tokens/s against the share of routed experts resident, one
 * panel per (model, routing), a line per configuration, and the T(h) limit of the best
 * configuration as a dashed line. Written as SVG and rendered to PNG with sharp (librsvg) when it
 * loads; the SVG stays next to the PNG either way.
 */
import { writeFileSync } from "node:fs";

export interface PlotSeries {
  label: string;
  color: string;
  dashed?: boolean;
  points: { x: number; y: number }[];
}

export interface PlotPanel {
  title: string;
  series: PlotSeries[];
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

export function pagingSvg(panels: PlotPanel[], heading: string): string {
  const W = 460;
  const H = 300;
  const cols = 2;
  const rows = Math.ceil(panels.length / cols);
  const width = W * cols;
  const height = H * rows + 40;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16">${esc(heading)}</text>`,
  ];
  const xs = [12.5, 25, 50, 100];
  panels.forEach((p, i) => {
    const ox = (i % cols) * W + 60;
    const oy = Math.floor(i / cols) * H + 50;
    const pw = W - 90;
    const ph = H - 90;
    const ymax = Math.max(1, ...p.series.flatMap((s) => s.points.map((q) => q.y))) * 1.1;
    const X = (x: number) => ox + (xs.indexOf(x) / (xs.length - 1)) * pw;
    const Y = (y: number) => oy + ph - (y / ymax) * ph;
    parts.push(
      `<text x="${ox + pw / 2}" y="${oy - 8}" text-anchor="middle" font-size="13">${esc(p.title)}</text>`,
    );
    parts.push(`<rect x="${ox}" y="${oy}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
    for (const x of xs) {
      parts.push(
        `<text x="${X(x)}" y="${oy + ph + 16}" text-anchor="middle" font-size="11">${x}%</text>`,
        `<line x1="${X(x)}" y1="${oy}" x2="${X(x)}" y2="${oy + ph}" stroke="#eee"/>`,
      );
    }
    for (let k = 0; k <= 4; k++) {
      const y = (ymax / 4) * k;
      parts.push(
        `<text x="${ox - 6}" y="${Y(y) + 4}" text-anchor="end" font-size="11">${y.toFixed(0)}</text>`,
      );
    }
    parts.push(
      `<text x="${ox + pw / 2}" y="${oy + ph + 32}" text-anchor="middle" font-size="11">routed experts resident (budget)</text>`,
      `<text x="${ox - 40}" y="${oy + ph / 2}" font-size="11" transform="rotate(-90 ${ox - 40} ${oy + ph / 2})" text-anchor="middle">decode tok/s</text>`,
    );
    p.series.forEach((s, si) => {
      const pts = s.points.filter((q) => xs.includes(q.x)).sort((a, b) => a.x - b.x);
      if (pts.length === 0) return;
      const d = pts
        .map((q, k) => `${k === 0 ? "M" : "L"}${X(q.x).toFixed(1)},${Y(q.y).toFixed(1)}`)
        .join(" ");
      parts.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
      );
      for (const q of pts) parts.push(`<circle cx="${X(q.x)}" cy="${Y(q.y)}" r="3" fill="${s.color}"/>`);
      parts.push(
        `<line x1="${ox + 8}" y1="${oy + 12 + si * 14}" x2="${ox + 26}" y2="${oy + 12 + si * 14}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ""}/>`,
        `<text x="${ox + 30}" y="${oy + 16 + si * 14}" font-size="10">${esc(s.label)}</text>`,
      );
    });
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** Write SVG and, when sharp is available, PNG. Returns the PNG path or null. */
export async function writePlot(svg: string, svgPath: string, pngPath: string): Promise<string | null> {
  writeFileSync(svgPath, svg);
  try {
    const mod = (await import("sharp")) as unknown as {
      default: (input: Buffer) => { png(): { toFile(path: string): Promise<unknown> } };
    };
    await mod.default(Buffer.from(svg)).png().toFile(pngPath);
    return pngPath;
  } catch (err) {
    process.stderr.write(
      `[paging] PNG not written (sharp unavailable: ${(err as Error).message}); SVG at ${svgPath}\n`,
    );
    return null;
  }
}
