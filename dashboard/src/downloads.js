// Downloads: a query's answer as CSV (the api's `Accept: text/csv`), saved
// as a file, and several CSVs as one zip (fflate, in the page).
import { strToU8, zipSync } from 'fflate';

// A file name from any text (site ids and values may hold anything).
export const fileSafe = (s) => String(s).replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'data';

// Saves `blob` as `name` through a temporary link.
export function save(name, blob) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

// POST /api/v2/query for CSV; `unauthorized` runs on a 401 (then throws).
export async function fetchCsv(body, unauthorized) {
  const r = await fetch('/api/v2/query', {
    method: 'POST',
    headers: { accept: 'text/csv', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (r.status === 401) {
    unauthorized();
    throw new Error('not logged in');
  }
  if (!r.ok) {
    const b = await r.json().catch(() => ({}));
    throw new Error(b.error || r.statusText);
  }
  return r.text();
}

export const csvBlob = (text) => new Blob([text], { type: 'text/csv;charset=utf-8' });

// `files`: [[name, text], …] → a zip blob.
export function zipBlob(files) {
  const entries = Object.fromEntries(files.map(([name, text]) => [name, strToU8(text)]));
  return new Blob([zipSync(entries, { level: 6 })], { type: 'application/zip' });
}
