/**
 * A small SVG writer for horizontal grouped bar charts: no dependency, plain
 * text out, readable on GitHub (light background, system fonts).
 */

const FONT = 'font-family="-apple-system, \'Segoe UI\', Helvetica, Arial, sans-serif"';

function escapeXml(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A rough width of `text` in pixels at `size` (good enough to lay out labels). */
function textWidth(text, size) {
  return String(text).length * size * 0.56;
}

function formatValue(value) {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : String(+value.toFixed(2));
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function formatTick(value) {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${+(value / 1e3).toFixed(0)}k`;
  if (value >= 1e3) return `${+(value / 1e3).toFixed(1)}k`;
  return String(+value.toFixed(2));
}

/**
 * @param {object} chart
 * @param {string} chart.title
 * @param {string} [chart.subtitle]
 * @param {{ name: string, color: string }[]} chart.series
 * @param {{ label: string, note?: string, highlight?: boolean, values: (number|null)[], texts?: (string|null)[] }[]} chart.groups
 *   one row group per category; `values[i]` belongs to `series[i]` (null: not measured)
 * @param {number} [chart.max] axis maximum (default: a round number above the largest value)
 * @param {string} [chart.unit] axis caption
 * @param {string} [chart.footer] small text under the chart
 * @returns {string} the SVG document
 */
export function barChart({ title, subtitle, series, groups, max, unit = '', footer }) {
  const barHeight = 14;
  const barGap = 3;
  const groupGap = 12;
  const labelSize = 12;
  const width = 860;
  const labelWidth = Math.min(300, Math.max(...groups.map((g) => Math.max(textWidth(g.label, labelSize), textWidth(g.note ?? '', 10.5)))) + 16);
  const left = labelWidth + 8;
  const right = 70;
  const plotWidth = width - left - right;
  const top = subtitle ? 70 : 52;
  const legendHeight = 22;
  const hasNotes = groups.some((g) => g.note);
  const groupHeight = Math.max(series.length * (barHeight + barGap) - barGap, hasNotes ? 28 : 0);
  const plotHeight = groups.length * (groupHeight + groupGap) - groupGap;
  const axisTop = top + legendHeight;
  const height = axisTop + plotHeight + 42 + (footer ? 18 : 0);
  const allValues = groups.flatMap((g) => g.values).filter((v) => typeof v === 'number' && Number.isFinite(v));
  const axisMax = max ?? niceMax(Math.max(0, ...allValues));
  const x = (v) => left + (Math.max(0, Math.min(v, axisMax)) / axisMax) * plotWidth;

  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="16" y="28" font-size="17" font-weight="600" fill="#1f2328">${escapeXml(title)}</text>`);
  if (subtitle) out.push(`<text x="16" y="48" font-size="12" fill="#57606a">${escapeXml(subtitle)}</text>`);

  // Legend.
  let lx = left;
  for (const s of series) {
    out.push(`<rect x="${lx}" y="${top - 1}" width="12" height="12" rx="2" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 17}" y="${top + 9}" font-size="12" fill="#1f2328">${escapeXml(s.name)}</text>`);
    lx += 17 + textWidth(s.name, 12) + 22;
  }

  // Grid and ticks.
  const ticks = 5;
  for (let t = 0; t <= ticks; t++) {
    const value = (axisMax * t) / ticks;
    const gx = x(value).toFixed(1);
    out.push(`<line x1="${gx}" y1="${axisTop - 4}" x2="${gx}" y2="${axisTop + plotHeight + 4}" stroke="${t === 0 ? '#8c959f' : '#d0d7de'}" stroke-width="1"/>`);
    out.push(`<text x="${gx}" y="${axisTop + plotHeight + 18}" font-size="11" fill="#57606a" text-anchor="middle">${escapeXml(formatTick(value))}</text>`);
  }
  if (unit)
    out.push(`<text x="${left + plotWidth / 2}" y="${axisTop + plotHeight + 34}" font-size="11" fill="#57606a" text-anchor="middle">${escapeXml(unit)}</text>`);

  // Bars.
  groups.forEach((group, gi) => {
    const gy = axisTop + gi * (groupHeight + groupGap);
    const labelY = gy + groupHeight / 2 + (group.note ? -1 : 4);
    out.push(
      `<text x="${left - 10}" y="${labelY}" font-size="${labelSize}" text-anchor="end" fill="#1f2328"${group.highlight ? ' font-weight="600"' : ''}>${escapeXml(group.label)}</text>`,
    );
    if (group.note) out.push(`<text x="${left - 10}" y="${labelY + 13}" font-size="10.5" text-anchor="end" fill="#57606a">${escapeXml(group.note)}</text>`);
    series.forEach((s, si) => {
      const by = gy + si * (barHeight + barGap);
      const value = group.values[si];
      const text = group.texts?.[si] ?? (typeof value === 'number' ? formatValue(value) : 'not measured');
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        out.push(`<text x="${left + 6}" y="${by + barHeight - 3}" font-size="11" fill="#8c959f">${escapeXml(text)}</text>`);
        return;
      }
      const bw = Math.max(1, x(value) - left);
      out.push(
        `<rect x="${left}" y="${by}" width="${bw.toFixed(1)}" height="${barHeight}" rx="2" fill="${s.color}"><title>${escapeXml(`${group.label} - ${s.name}: ${text}`)}</title></rect>`,
      );
      const inside = bw > textWidth(text, 11) + 10;
      out.push(
        `<text x="${(inside ? left + bw - 5 : left + bw + 5).toFixed(1)}" y="${by + barHeight - 3}" font-size="11" text-anchor="${inside ? 'end' : 'start'}" fill="${inside ? '#ffffff' : '#1f2328'}">${escapeXml(text)}</text>`,
      );
    });
  });
  if (footer) out.push(`<text x="16" y="${height - 10}" font-size="10.5" fill="#57606a">${escapeXml(footer)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
