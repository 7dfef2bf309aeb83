// The world map's shapes, made at build time (vite.config.js serves them as
// the module `virtual:world-map`): Natural Earth's 1:110m countries from
// world-atlas (TopoJSON, ISO 3166-1 numeric ids), projected with d3-geo's
// Natural Earth projection into a 960-wide box and written as SVG path
// strings with whole-number relative coordinates, keyed by ISO 3166-1
// alpha-2 code (the api's `visit:country` values). The page gets only these
// strings: no TopoJSON decoder, no projection code, no id table.
import { createRequire } from 'node:module';
import { geoNaturalEarth1, geoPath } from 'd3-geo';
import { feature } from 'topojson-client';

const require = createRequire(import.meta.url);
const world = require('world-atlas/countries-110m.json');
const isoCodes = require('i18n-iso-countries/codes.json'); // [[alpha2, alpha3, numeric], …]

const WIDTH = 960;
// Features without an ISO numeric id: Kosovo has the user-assigned code XK
// (which GeoIP databases use); the other two are drawn as part of the
// country GeoIP databases put them in.
const NO_ID = { Kosovo: 'XK', 'N. Cyprus': 'CY', Somaliland: 'SO' };

// A d3-geo path context that writes relative moves and lines rounded to
// whole units, dropping points that round onto the previous one.
function relativePath() {
  let out = '';
  let x = 0;
  let y = 0;
  let ring = [];
  const flush = () => {
    if (ring.length < 3) { ring = []; return; }
    const [[sx, sy], ...rest] = ring;
    out += `m${sx - x},${sy - y}`;
    let [px, py] = [sx, sy];
    let line = '';
    for (const [qx, qy] of rest) {
      const dx = qx - px;
      const dy = qy - py;
      line += `${line && dx >= 0 ? ' ' : ''}${dx}${dy < 0 ? '' : ','}${dy}`;
      [px, py] = [qx, qy];
    }
    out += `l${line}z`;
    // After z the current point is the ring's start.
    [x, y] = [sx, sy];
    ring = [];
  };
  const push = (px, py) => {
    const p = [Math.round(px), Math.round(py)];
    const last = ring[ring.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) ring.push(p);
  };
  return {
    moveTo(px, py) { flush(); push(px, py); },
    lineTo: push,
    closePath: flush,
    arc() {},
    result() { flush(); const r = out; out = ''; x = 0; y = 0; return r; },
  };
}

export function worldMap() {
  const numeric = new Map(isoCodes.map(([alpha2, , num]) => [num, alpha2]));
  const countries = feature(world, world.objects.countries).features
    .map((f) => ({ f, code: f.id === undefined ? NO_ID[f.properties.name] : numeric.get(f.id) }))
    // Antarctica has no visitors worth the space it takes.
    .filter(({ f, code }) => {
      if (!code) throw new Error(`world map: no ISO code for ${f.id} ${f.properties.name}`);
      return code !== 'AQ';
    });
  const collection = { type: 'FeatureCollection', features: countries.map(({ f }) => f) };
  const projection = geoNaturalEarth1().fitWidth(WIDTH, collection);
  const [[, y0], [, y1]] = geoPath(projection).bounds(collection);
  projection.translate([projection.translate()[0], projection.translate()[1] - Math.floor(y0)]);
  const height = Math.ceil(y1 - Math.floor(y0));
  const ctx = relativePath();
  const path = geoPath(projection, ctx);
  const byCode = new Map();
  for (const { f, code } of countries) byCode.set(code, [...(byCode.get(code) || []), f]);
  const shapes = {};
  for (const code of [...byCode.keys()].sort()) {
    path({ type: 'FeatureCollection', features: byCode.get(code) });
    const d = ctx.result();
    if (d) shapes[code] = d;
  }
  return { width: WIDTH, height, shapes };
}
