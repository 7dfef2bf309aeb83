// Goals and funnels: the goals panel (conversions and conversion rate per
// goal, a click filters by the goal) and the funnel view (a saved funnel's
// steps, reached visitors, conversion and drop-off), both under the
// dashboard's filters and period.

const fmt = new Intl.NumberFormat('en-US');
const pct = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

export const GOAL_METRICS = ['visitors', 'events', 'conversion_rate'];
// With revenue goals, their revenue too (null on other goals' rows).
export const goalMetrics = (goals) => (goals.some((g) => g.currency) ? [...GOAL_METRICS, 'total_revenue'] : GOAL_METRICS);

const money = (m) => {
  if (!m) return '–';
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency: m.currency }).format(m.value);
  } catch {
    return `${m.value} ${m.currency}`;
  }
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

// The goals panel from the site's goals and the query's answer (rows by
// `event:goal`); with no goals, how to add one.
export function renderGoals(root, goals, res) {
  const tbody = root.querySelector('tbody');
  root.querySelector('.none-yet').hidden = goals.length > 0;
  root.querySelector('table').hidden = goals.length === 0;
  root.querySelector('button.download').hidden = goals.length === 0;
  if (goals.length === 0) {
    tbody.replaceChildren();
    return;
  }
  const revenue = goals.some((g) => g.currency);
  root.querySelector('th.revenue').hidden = !revenue;
  const rows = (res?.results || []).map((r) => {
    const [name] = r.dimensions;
    const [visitors, events, rate, earned] = r.metrics;
    const button = el('button', { type: 'button', class: 'row-filter', 'data-dim': 'event:goal', 'data-value': name, title: `Filter: Goal is ${name}`, text: name });
    const bar = el('span', { class: 'bar', 'aria-hidden': 'true' });
    bar.style.width = `${Math.min(100, Math.max(0, rate))}%`;
    const tr = el('tr', { 'data-value': name },
      el('td', { class: 'label' }, bar, button),
      el('td', { class: 'num', text: fmt.format(visitors) }),
      el('td', { class: 'num', text: fmt.format(events) }),
      el('td', { class: 'num', text: `${pct.format(rate)}%` }));
    if (revenue) tr.append(el('td', { class: 'num', text: money(earned) }));
    Object.assign(tr.dataset, { visitors: String(visitors), events: String(events), rate: String(rate) });
    if (earned) Object.assign(tr.dataset, { revenue: String(earned.value), currency: earned.currency });
    return tr;
  });
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: revenue ? '5' : '4', class: 'none', text: 'No conversions in this period' })));
  tbody.replaceChildren(...rows);
}

// The funnel picker's options (saved funnels by name), keeping `chosen`.
export function fillFunnels(select, funnels, chosen) {
  select.replaceChildren(...funnels.map((f) => new Option(f.name, f.name)));
  select.hidden = funnels.length === 0;
  if (funnels.some((f) => f.name === chosen)) select.value = chosen;
  return select.value;
}

// A funnel's steps as bars: visitors, conversion from the first step,
// drop-off from the previous one.
export function renderFunnel(list, res) {
  const items = (res?.steps || []).map((s, i) => {
    const bar = el('span', { class: 'bar', 'aria-hidden': 'true' });
    bar.style.width = `${Math.min(100, Math.max(0, s.conversion_rate))}%`;
    const drop = i === 0 ? '' : ` · ${fmt.format(s.dropoff)} dropped off (${pct.format(s.dropoff_percentage)}%)`;
    const li = el('li', { class: 'funnel-step' },
      el('div', { class: 'funnel-bar' }, bar, el('span', { class: 'funnel-name', text: s.name })),
      el('p', { class: 'funnel-figures', text: `${fmt.format(s.visitors)} visitors · ${pct.format(s.conversion_rate)}%${drop}` }));
    Object.assign(li.dataset, { visitors: String(s.visitors), rate: String(s.conversion_rate), dropoff: String(s.dropoff) });
    return li;
  });
  list.replaceChildren(...items);
}
