// Drawings computed in the browser, with no map tiles: the trajectory over the task's site
// circle, and signatures redrawn from their strokes. Everything is inline SVG.
import { s } from './dom.js';
import { clock, distance } from './format.js';
import { t } from './i18n.js';

const METRES_PER_DEGREE = 111320;

/** A local flat projection around (lat0, lon0), in metres east and north. */
function projector(lat0, lon0) {
  const cos = Math.cos((lat0 * Math.PI) / 180);
  return (lat, lon) => ({
    x: (lon - lon0) * METRES_PER_DEGREE * cos,
    y: (lat - lat0) * METRES_PER_DEGREE,
  });
}

/** A round length (1, 2 or 5 × 10^k metres) close to `target`. */
function roundLength(target) {
  const power = 10 ** Math.floor(Math.log10(Math.max(target, 1)));
  for (const step of [5, 2, 1]) {
    if (step * power <= target) return step * power;
  }
  return power;
}

/** Colour along time: blue at the start, through green, to red at the end. */
export function timeColour(fraction) {
  const hue = Math.round(230 - 230 * Math.min(1, Math.max(0, fraction)));
  return `hsl(${hue}, 80%, 42%)`;
}

/**
 * The trajectory: `site` {lat, lon, radius_m}, `track` [{lat, lon, at}], `fixes`
 * [{lat, lon, label}]. Answers an <svg> scaled so the site and every point fit.
 */
export function trajectory(site, track, fixes, width = 760, height = 480) {
  const project = projector(site.lat, site.lon);
  const points = track
    .filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon))
    .map((p) => ({ ...project(p.lat, p.lon), at: p.at }));
  const marks = fixes
    .filter((f) => Number.isFinite(f.lat) && Number.isFinite(f.lon))
    .map((f) => ({ ...project(f.lat, f.lon), label: f.label, id: f.id }));
  const r = site.radius_m || 0;
  let minX = -r;
  let maxX = r;
  let minY = -r;
  let maxY = r;
  for (const p of [...points, ...marks]) {
    minX = Math.min(minX, p.x);
    maxX = Math.max(maxX, p.x);
    minY = Math.min(minY, p.y);
    maxY = Math.max(maxY, p.y);
  }
  const margin = 48;
  const spanX = Math.max(maxX - minX, 20);
  const spanY = Math.max(maxY - minY, 20);
  const scale = Math.min((width - 2 * margin) / spanX, (height - 2 * margin - 30) / spanY);
  const offsetX = margin + (width - 2 * margin - spanX * scale) / 2;
  const offsetY = margin + (height - 2 * margin - 30 - spanY * scale) / 2;
  const sx = (x) => offsetX + (x - minX) * scale;
  const sy = (y) => offsetY + (maxY - y) * scale;

  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'trajectory',
    role: 'img',
    'aria-label': t('evidence.trajectory'),
    'data-test': 'trajectory',
  });
  const defs = s(
    'defs',
    {},
    s(
      'linearGradient',
      { id: 'time-gradient', x1: '0', x2: '1', y1: '0', y2: '0' },
      [0, 0.25, 0.5, 0.75, 1].map((f) =>
        s('stop', { offset: `${f * 100}%`, 'stop-color': timeColour(f) }),
      ),
    ),
  );
  svg.append(defs, s('rect', { x: 0, y: 0, width, height, class: 'map-bg' }));

  // The site: its circle to scale, never smaller than a few pixels so it stays visible.
  const siteRadius = Math.max(r * scale, 4);
  svg.append(
    s('circle', {
      cx: sx(0),
      cy: sy(0),
      r: siteRadius,
      class: 'site',
      'data-test': 'site-circle',
      'data-radius-m': r,
    }),
    s('circle', { cx: sx(0), cy: sy(0), r: 2.5, class: 'site-centre' }),
    s(
      'text',
      { x: sx(0) - siteRadius - 6, y: sy(0) + 4, class: 'label', 'text-anchor': 'end' },
      t('evidence.site'),
    ),
  );

  if (points.length > 0) {
    const all = points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
    svg.append(
      s('polyline', {
        points: all,
        class: 'track',
        'data-test': 'track-line',
        'data-points': points.length,
      }),
    );
    const times = points.map((p) => Date.parse(p.at)).filter(Number.isFinite);
    const first = Math.min(...times);
    const last = Math.max(...times);
    const span = Math.max(last - first, 1);
    const fraction = (p) =>
      Number.isFinite(Date.parse(p.at)) ? (Date.parse(p.at) - first) / span : 0;
    // Coloured along time, in short pieces so the colour changes as the time goes on.
    const pieces = Math.min(64, points.length - 1);
    const group = s('g', { class: 'track-time' });
    for (let i = 0; i < pieces; i += 1) {
      const from = Math.floor((i * (points.length - 1)) / pieces);
      const to = Math.floor(((i + 1) * (points.length - 1)) / pieces);
      const part = points
        .slice(from, to + 1)
        .map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`)
        .join(' ');
      group.append(s('polyline', { points: part, stroke: timeColour(fraction(points[from])) }));
    }
    svg.append(group);
    // A few time ticks along the track, and its two ends.
    const ticks = s('g', { class: 'ticks' });
    const tickCount = Math.min(4, Math.max(0, points.length - 2));
    for (let k = 1; k <= tickCount; k += 1) {
      const target = first + (span * k) / (tickCount + 1);
      const p = points.reduce(
        (best, q) =>
          Math.abs(Date.parse(q.at) - target) < Math.abs(Date.parse(best.at) - target) ? q : best,
        points[0],
      );
      // Alternate sides, so the labels of a way out and back do not cover each other.
      const left = k % 2 === 0;
      ticks.append(
        s('circle', {
          cx: sx(p.x),
          cy: sy(p.y),
          r: 3,
          class: 'tick',
          fill: timeColour(fraction(p)),
        }),
        s(
          'text',
          {
            x: sx(p.x) + (left ? -7 : 7),
            y: sy(p.y) + 4,
            class: 'tick-label',
            'text-anchor': left ? 'end' : 'start',
          },
          clock(p.at),
        ),
      );
    }
    const start = points[0];
    const end = points[points.length - 1];
    ticks.append(
      s('circle', {
        cx: sx(start.x),
        cy: sy(start.y),
        r: 5,
        class: 'end start',
        fill: timeColour(0),
      }),
      s(
        'text',
        { x: sx(start.x) + 7, y: sy(start.y) - 6, class: 'end-label', 'data-test': 'track-start' },
        `${t('evidence.start')} ${clock(start.at, true)}`,
      ),
      s('circle', { cx: sx(end.x), cy: sy(end.y), r: 5, class: 'end finish', fill: timeColour(1) }),
      s(
        'text',
        { x: sx(end.x) + 7, y: sy(end.y) + 16, class: 'end-label', 'data-test': 'track-end' },
        `${t('evidence.end')} ${clock(end.at, true)}`,
      ),
    );
    svg.append(ticks);
    // Legend: the colour scale from the first time to the last.
    const legendY = height - 22;
    svg.append(
      s(
        'g',
        { class: 'legend' },
        s('rect', {
          x: width - 230,
          y: legendY - 8,
          width: 120,
          height: 8,
          fill: 'url(#time-gradient)',
        }),
        s(
          'text',
          { x: width - 236, y: legendY, class: 'tick-label', 'text-anchor': 'end' },
          clock(first),
        ),
        s('text', { x: width - 104, y: legendY, class: 'tick-label' }, clock(last)),
      ),
    );
  }

  // Photo fixes, numbered like the photos on the page.
  for (const m of marks) {
    svg.append(
      s(
        'g',
        { class: 'fix', 'data-test': 'photo-fix', 'data-photo': m.id },
        s('rect', { x: sx(m.x) - 6, y: sy(m.y) - 6, width: 12, height: 12, rx: 2 }),
        s(
          'text',
          { x: sx(m.x), y: sy(m.y) + 4, 'text-anchor': 'middle', class: 'fix-label' },
          m.label,
        ),
      ),
    );
  }

  // The scale bar: a round length near a fifth of the width.
  const barMetres = roundLength(width / 5 / scale);
  const barPixels = barMetres * scale;
  const barY = height - 22;
  svg.append(
    s(
      'g',
      { class: 'scale-bar', 'data-test': 'scale-bar' },
      s('line', { x1: 16, y1: barY, x2: 16 + barPixels, y2: barY }),
      s('line', { x1: 16, y1: barY - 5, x2: 16, y2: barY + 5 }),
      s('line', { x1: 16 + barPixels, y1: barY - 5, x2: 16 + barPixels, y2: barY + 5 }),
      s(
        'text',
        { x: 16 + barPixels / 2, y: barY - 8, 'text-anchor': 'middle', class: 'tick-label' },
        distance(barMetres),
      ),
    ),
  );
  svg.append(s('text', { x: width - 16, y: 20, 'text-anchor': 'end', class: 'north' }, 'N ↑'));
  return svg;
}

/** A signature redrawn from its strokes [[{x, y, t_ms, pressure}]]. */
export function signature(strokes, width = 360, height = 160) {
  const all = strokes.flat().filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'signature',
    role: 'img',
    'aria-label': t('evidence.signature'),
  });
  if (all.length === 0) return svg;
  const minX = Math.min(...all.map((p) => p.x));
  const maxX = Math.max(...all.map((p) => p.x));
  const minY = Math.min(...all.map((p) => p.y));
  const maxY = Math.max(...all.map((p) => p.y));
  const pad = 10;
  const scale = Math.min(
    (width - 2 * pad) / Math.max(maxX - minX, 1),
    (height - 2 * pad) / Math.max(maxY - minY, 1),
  );
  const ox = pad + (width - 2 * pad - (maxX - minX) * scale) / 2;
  const oy = pad + (height - 2 * pad - (maxY - minY) * scale) / 2;
  for (const stroke of strokes) {
    const pts = stroke.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (pts.length === 0) continue;
    const d = pts
      .map(
        (p, i) =>
          `${i === 0 ? 'M' : 'L'}${(ox + (p.x - minX) * scale).toFixed(1)} ` +
          `${(oy + (p.y - minY) * scale).toFixed(1)}`,
      )
      .join(' ');
    const pressure = pts.map((p) => p.pressure).filter(Number.isFinite);
    const mean = pressure.length ? pressure.reduce((a, b) => a + b, 0) / pressure.length : 0.5;
    svg.append(
      s('path', {
        d: pts.length === 1 ? `${d} l0.1 0` : d,
        'stroke-width': (1.5 + 2.5 * mean).toFixed(2),
        class: 'stroke',
      }),
    );
  }
  return svg;
}
