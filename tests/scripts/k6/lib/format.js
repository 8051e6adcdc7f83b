// Helper module imported by lib/helpers.js (a relative import from a
// relative import).
export function joinUrl(base, path) {
  return `${base.replace(/\/$/, '')}/${path.replace(/^\//, '')}`;
}
