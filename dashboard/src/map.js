// The Locations panel's world map: one SVG path per country (shapes made at
// build time from Natural Earth's 1:110m data, see world.mjs), shaded by
// visitors. A country with visitors has a <title> and a readout line with
// its name and visitors, and is a button: a click (or Enter) filters by it.
import world from 'virtual:world-map';

const SVG = 'http://www.w3.org/2000/svg';
const fmt = new Intl.NumberFormat('en-US');
// The shading runs from LIGHT (fewest visitors) to DARK (most), by the
// square root of the share of the top country, so small counts stay visible.
const LIGHT = [198, 219, 247];
const DARK = [14, 59, 128];

export function shade(visitors, max) {
  const t = max > 0 ? Math.sqrt(Math.min(1, visitors / max)) : 0;
  const c = LIGHT.map((l, i) => Math.round(l + (DARK[i] - l) * t));
  return `rgb(${c.join(', ')})`;
}

export const visitorsText = (n) => `${fmt.format(n)} visitor${n === 1 ? '' : 's'}`;

// Builds the map into `root` (an element); `onPick(code)` is called when a
// country with visitors is clicked. Returns `update(rows)`, rows being
// [code, visitors] pairs.
export function createMap(root, { name, flag, onPick, idle }) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${world.width} ${world.height}`);
  svg.setAttribute('class', 'world');
  svg.setAttribute('role', 'group');
  svg.setAttribute('aria-label', 'Visitors by country, on a world map');
  const paths = new Map();
  for (const [code, d] of Object.entries(world.shapes)) {
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('d', d);
    p.setAttribute('class', 'country');
    p.dataset.code = code;
    svg.append(p);
    paths.set(code, p);
  }
  const info = document.createElement('p');
  info.className = 'map-info';
  info.setAttribute('aria-live', 'polite');
  const legend = document.createElement('div');
  legend.className = 'map-legend';
  legend.setAttribute('aria-hidden', 'true');
  const [lo, ramp, hi] = ['span', 'span', 'span'].map((t) => document.createElement(t));
  ramp.className = 'ramp';
  legend.append(lo, ramp, hi);
  const offMap = document.createElement('p');
  offMap.className = 'off-map';
  root.replaceChildren(svg, legend, info, offMap);

  let idleText = '';
  const show = (p) => {
    info.textContent = p ? `${flag(p.dataset.code)} ${name(p.dataset.code)}: ${visitorsText(Number(p.dataset.visitors))}`.trim() : idleText;
  };
  const target = (e) => e.target.closest && e.target.closest('path.country[data-visitors]');
  svg.addEventListener('pointerover', (e) => show(target(e)));
  svg.addEventListener('pointerleave', () => show(null));
  svg.addEventListener('focusin', (e) => show(target(e)));
  svg.addEventListener('focusout', () => show(null));
  svg.addEventListener('click', (e) => {
    const p = target(e);
    if (p) onPick(p.dataset.code);
  });
  svg.addEventListener('keydown', (e) => {
    const p = target(e);
    if (p && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      onPick(p.dataset.code);
    }
  });

  return function update(rows) {
    const max = rows.reduce((m, [, v]) => Math.max(m, v), 0);
    const byCode = new Map(rows);
    for (const [code, p] of paths) {
      const v = byCode.get(code);
      p.replaceChildren();
      if (v) {
        const label = `${name(code)}: ${visitorsText(v)}`;
        p.dataset.visitors = String(v);
        p.setAttribute('fill', shade(v, max));
        p.setAttribute('tabindex', '0');
        p.setAttribute('role', 'button');
        p.setAttribute('aria-label', `${label}. Filter by ${name(code)}`);
        const title = document.createElementNS(SVG, 'title');
        title.textContent = label;
        p.append(title);
      } else {
        delete p.dataset.visitors;
        p.removeAttribute('fill');
        p.removeAttribute('tabindex');
        p.removeAttribute('role');
        p.removeAttribute('aria-label');
      }
    }
    // Countries with visitors but too small for 1:110m (Singapore, Malta…)
    // and visitors of unknown country: listed under the map, as buttons.
    const missing = rows.filter(([code]) => !paths.has(code));
    offMap.replaceChildren();
    if (missing.length) {
      offMap.append('Not on the map: ');
      missing.forEach(([code, v], i) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'link-button';
        b.dataset.code = code;
        b.dataset.visitors = String(v);
        b.textContent = `${code ? name(code) : '(unknown)'} (${fmt.format(v)})`;
        b.addEventListener('click', () => onPick(code));
        offMap.append(...(i ? [', ', b] : [b]));
      });
    }
    offMap.hidden = missing.length === 0;
    lo.textContent = max ? '1' : '';
    hi.textContent = max ? fmt.format(max) : '';
    legend.hidden = max === 0;
    const shown = rows.filter(([code]) => paths.has(code)).length;
    idleText = max ? `${fmt.format(shown)} ${shown === 1 ? 'country' : 'countries'} with visitors: point at one for its number, click it to filter` : idle;
    show(null);
  };
}
